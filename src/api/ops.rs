//! Operations endpoints (`/v1/ops`, admin only): what is stuck or failed, one-click reprocess,
//! and the creator inputs of the value score.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use chrono::{DateTime, Utc};
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::json::ApiJson;
use crate::api::error::{ApiError, ErrorBody};
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
pub struct ListQuery {
    status: String,
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
#[utoipa::path(get, path = "/v1/ops/videos", tag = "ops", params(ListQuery), responses((status = 200, body = OpsVideos), (status = 400, description = "invalid input", body = ErrorBody), (status = 401, description = "missing or invalid token", body = ErrorBody), (status = 403, description = "not an admin", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn list_videos(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Json<OpsVideos>, ApiError> {
    let status = match VideoStatus::parse(&query.status) {
        Some(status @ (VideoStatus::Failed | VideoStatus::Processing)) => status,
        _ => return Err(ApiError::bad_request("invalid_status", "status must be 'failed' or 'processing'")),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
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
#[utoipa::path(post, path = "/v1/ops/videos/{id}/reprocess", tag = "ops", params(("id" = String, Path, description = "video id")), responses((status = 202, body = Reprocessed), (status = 401, description = "missing or invalid token", body = ErrorBody), (status = 403, description = "not an admin", body = ErrorBody), (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody), (status = 409, description = "still processing", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn reprocess(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
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
    follower_count: u64,
}

/// `PUT /v1/ops/creators/{id}`: sets a creator's follower count (a value-score input).
#[utoipa::path(put, path = "/v1/ops/creators/{id}", tag = "ops", params(("id" = String, Path, description = "creator id")), request_body = CreatorInputs, responses((status = 200, body = Creator), (status = 400, description = "invalid input", body = ErrorBody), (status = 401, description = "missing or invalid token", body = ErrorBody), (status = 403, description = "not an admin", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn set_creator(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreatorInputs>,
) -> Result<Json<Creator>, ApiError> {
    let creator = UserId::parse(&id).map_err(|e| ApiError::bad_request("invalid_creator_id", e.to_string()))?;
    let followers = i64::try_from(body.follower_count)
        .map_err(|_| ApiError::bad_request("invalid_follower_count", "follower_count is too large"))?;
    state.db.set_follower_count(&creator, followers, Utc::now()).await?;
    Ok(Json(Creator { creator_id: creator.to_string(), follower_count: followers }))
}

/// `GET /v1/ops/videos/{id}/policy`: a video's delivery policy (empty fields: defaults apply).
#[utoipa::path(get, path = "/v1/ops/videos/{id}/policy", tag = "ops", params(("id" = String, Path, description = "video id")), responses((status = 200, body = VideoPolicy), (status = 401, description = "missing or invalid token", body = ErrorBody), (status = 403, description = "not an admin", body = ErrorBody), (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn video_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<VideoPolicy>, ApiError> {
    let video_id = super::path_id(&id, "video")?;
    let row = state.db.playback_row(video_id).await?.ok_or_else(|| ApiError::not_found("video"))?;
    Ok(Json(row.policy))
}

/// `PUT /v1/ops/videos/{id}/policy`: replaces a video's delivery policy.
#[utoipa::path(put, path = "/v1/ops/videos/{id}/policy", tag = "ops", params(("id" = String, Path, description = "video id")), request_body = VideoPolicy, responses((status = 200, body = VideoPolicy), (status = 400, description = "invalid input", body = ErrorBody), (status = 401, description = "missing or invalid token", body = ErrorBody), (status = 403, description = "not an admin", body = ErrorBody), (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn set_video_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
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
#[utoipa::path(get, path = "/v1/ops/delivery-policy", tag = "ops", responses((status = 200, body = Defaults), (status = 401, description = "missing or invalid token", body = ErrorBody), (status = 403, description = "not an admin", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn delivery_defaults(State(state): State<AppState>, admin: Admin) -> Result<Json<Defaults>, ApiError> {
    Ok(Json(state.delivery.defaults().await?))
}

/// `PUT /v1/ops/delivery-policy`: replaces the global defaults for every process.
#[utoipa::path(put, path = "/v1/ops/delivery-policy", tag = "ops", request_body = Defaults, responses((status = 200, body = Defaults), (status = 400, description = "invalid input", body = ErrorBody), (status = 401, description = "missing or invalid token", body = ErrorBody), (status = 403, description = "not an admin", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn set_delivery_defaults(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(defaults): ApiJson<Defaults>,
) -> Result<Json<Defaults>, ApiError> {
    if defaults.feed_max_short_side == 0 || defaults.low_conversion_max_short_side == 0 || defaults.prefetch_cap > 10 {
        return Err(ApiError::bad_request("invalid_policy", "ceilings must be positive and prefetch_cap at most 10"));
    }
    state.delivery.set_defaults(defaults).await?;
    Ok(Json(defaults))
}
