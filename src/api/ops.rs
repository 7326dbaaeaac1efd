//! Operations endpoints (`/v1/ops`, admin only): what is stuck or failed, one-click reprocess,
//! and the creator inputs of the value score.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use chrono::{DateTime, Utc};
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::extract::{ApiPath, ApiQuery};
use super::json::ApiJson;
use super::openapi::{AdminOnly, BadRequest, Conflict, JsonBody, NotFound};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::delivery::policy::Defaults;
use crate::model::{AuthUser, Generation, UserId, VideoId, VideoPolicy, VideoStatus};

/// An authenticated caller with the admin role; anyone else gets 403.
#[derive(Debug)]
pub struct Admin(pub AuthUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(Admin(user))
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this endpoint is for operations staff"))
        }
    }
}

/// Query of `GET /v1/ops/videos`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Which videos: `failed` or `processing`.
    #[param(pattern = "^(failed|processing)$")]
    status: String,
    /// Most videos to list (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// One video in the ops listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpsVideo {
    video_id: VideoId,
    creator_id: String,
    status: VideoStatus,
    generation: Generation,
    failed_reason: Option<String>,
    retryable: Option<bool>,
    stage: Option<String>,
    stage_status: Option<String>,
    attempts: Option<i64>,
    last_error: Option<String>,
    value_score: f64,
    created_at: DateTime<Utc>,
    age_ms: i64,
    processing_ms: Option<i64>,
}

/// The ops listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpsVideos {
    videos: Vec<OpsVideo>,
}

/// The answer to a reprocess.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reprocessed {
    video_id: VideoId,
    generation: Generation,
    status: &'static str,
}

/// A creator's value-score inputs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Creator {
    creator_id: String,
    follower_count: i64,
}

/// `GET /v1/ops/videos?status=failed|processing`: oldest first, with stage, attempts and age.
#[utoipa::path(
    get,
    path = "/v1/ops/videos",
    operation_id = "list_ops_videos",
    tag = "ops",
    params(ListQuery),
    responses((status = 200, description = "the videos, oldest first", body = OpsVideos), BadRequest, AdminOnly),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn list_videos(
    State(state): State<AppState>,
    admin: Admin,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<OpsVideos>, ApiError> {
    let status = match VideoStatus::parse(&query.status) {
        Some(status @ (VideoStatus::Failed | VideoStatus::Processing)) => status,
        _ => return Err(ApiError::bad_request("invalid_status", "status must be 'failed' or 'processing'")),
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be 1 to 1000"));
    }
    let now = Utc::now();
    let videos: Vec<OpsVideo> = state
        .db
        .ops_videos(status, limit)
        .await?
        .into_iter()
        .map(|row| {
            let video = row.video;
            OpsVideo {
                age_ms: (now - video.created_at).num_milliseconds(),
                processing_ms: video.processing_since.map(|since| (now - since).num_milliseconds()),
                video_id: video.video_id,
                creator_id: video.creator_id.to_string(),
                status: video.status,
                generation: video.generation,
                failed_reason: video.failed_reason,
                retryable: video.retryable,
                stage: video.stage.map(|stage| stage.as_str().to_owned()),
                stage_status: row.stage_status.map(|status| status.as_str().to_owned()),
                attempts: row.attempts,
                last_error: row.last_error,
                value_score: video.value_score,
                created_at: video.created_at,
            }
        })
        .collect();
    Ok(Json(OpsVideos { videos }))
}

/// `POST /v1/ops/videos/{id}/reprocess`: restarts the pipeline as a new generation.
#[utoipa::path(
    post,
    path = "/v1/ops/videos/{id}/reprocess",
    operation_id = "reprocess_video",
    tag = "ops",
    params(("id" = Uuid, Path, description = "video id")),
    responses(
        (status = 202, description = "a new generation is processing", body = Reprocessed, links(
            ("get_video" = (operation_id = "get_video", parameters(("id" = "$response.body#/video_id")))),
        )),
        AdminOnly, NotFound, Conflict,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn reprocess(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<Reprocessed>), ApiError> {
    let video_id = super::path_id(&id, "video")?;
    let video = state.db.get_video(video_id).await?.ok_or_else(|| ApiError::not_found("video"))?;
    match state.pipeline.reprocess(video_id, Utc::now()).await? {
        Some(generation) => {
            Ok((StatusCode::ACCEPTED, Json(Reprocessed { video_id, generation, status: "processing" })))
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_reprocessable",
            "only ready or failed videos can be reprocessed",
        )
        .with_details(json!({"status": video.status.as_str()}))),
    }
}

/// Body of `PUT /v1/ops/creators/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatorInputs {
    /// Followers of the creator.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    follower_count: u64,
}

/// `PUT /v1/ops/creators/{id}`: sets a creator's follower count (a value-score input).
#[utoipa::path(
    put,
    path = "/v1/ops/creators/{id}",
    operation_id = "set_creator",
    tag = "ops",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "creator (user) id")),
    request_body = CreatorInputs,
    responses((status = 200, description = "the stored inputs", body = Creator), JsonBody, AdminOnly),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn set_creator(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreatorInputs>,
) -> Result<Json<Creator>, ApiError> {
    let creator = UserId::parse(&id).map_err(|e| ApiError::bad_request("invalid_creator_id", e.to_string()))?;
    let followers = i64::try_from(body.follower_count)
        .map_err(|_| ApiError::bad_request("invalid_follower_count", "follower_count is too large"))?;
    state.db.set_follower_count(&creator, followers, Utc::now()).await?;
    Ok(Json(Creator { creator_id: creator.to_string(), follower_count: followers }))
}

/// `GET /v1/ops/videos/{id}/policy`: a video's delivery policy (empty fields: defaults apply).
#[utoipa::path(
    get,
    path = "/v1/ops/videos/{id}/policy",
    operation_id = "get_video_policy",
    tag = "ops",
    params(("id" = Uuid, Path, description = "video id")),
    responses((status = 200, description = "the video's policy", body = VideoPolicy), AdminOnly, NotFound),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn video_policy(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<VideoPolicy>, ApiError> {
    let video_id = super::path_id(&id, "video")?;
    let row = state.db.playback_row(video_id).await?.ok_or_else(|| ApiError::not_found("video"))?;
    Ok(Json(row.policy))
}

/// `PUT /v1/ops/videos/{id}/policy`: replaces a video's delivery policy.
#[utoipa::path(
    put,
    path = "/v1/ops/videos/{id}/policy",
    operation_id = "set_video_policy",
    tag = "ops",
    params(("id" = Uuid, Path, description = "video id")),
    request_body = VideoPolicy,
    responses((status = 200, description = "the stored policy", body = VideoPolicy), JsonBody, AdminOnly, NotFound),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn set_video_policy(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(policy): ApiJson<VideoPolicy>,
) -> Result<Json<VideoPolicy>, ApiError> {
    let video_id = super::path_id(&id, "video")?;
    state.db.get_video(video_id).await?.ok_or_else(|| ApiError::not_found("video"))?;
    if policy.max_bitrate_kbps.is_some_and(|kbps| kbps <= 0) {
        return Err(ApiError::bad_request("invalid_policy", "max_bitrate_kbps must be positive"));
    }
    state.db.set_video_policy(video_id, &policy, Utc::now()).await?;
    Ok(Json(policy))
}

/// `GET /v1/ops/delivery-policy`: the global defaults in force.
#[utoipa::path(
    get,
    path = "/v1/ops/delivery-policy",
    operation_id = "get_delivery_policy",
    tag = "ops",
    responses((status = 200, description = "the defaults in force", body = Defaults), AdminOnly),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn delivery_defaults(State(state): State<AppState>, admin: Admin) -> Result<Json<Defaults>, ApiError> {
    Ok(Json(state.delivery.defaults().await?))
}

/// `PUT /v1/ops/delivery-policy`: replaces the global defaults for every process.
#[utoipa::path(
    put,
    path = "/v1/ops/delivery-policy",
    operation_id = "set_delivery_policy",
    tag = "ops",
    request_body = Defaults,
    responses((status = 200, description = "the stored defaults", body = Defaults), JsonBody, AdminOnly),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn set_delivery_defaults(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(defaults): ApiJson<Defaults>,
) -> Result<Json<Defaults>, ApiError> {
    let ceiling = 1..=8192;
    if !ceiling.contains(&defaults.feed_max_short_side)
        || !ceiling.contains(&defaults.low_conversion_max_short_side)
        || defaults.prefetch_cap > 10
    {
        return Err(ApiError::bad_request("invalid_policy", "ceilings must be 1 to 8192 and prefetch_cap at most 10"));
    }
    state.delivery.set_defaults(defaults).await?;
    Ok(Json(defaults))
}
