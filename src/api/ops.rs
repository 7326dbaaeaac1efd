//! Operations endpoints (`/v1/ops`, admin only): what is stuck or failed, one-click reprocess,
//! and the creator inputs of the value score.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use chrono::{DateTime, Utc};
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::json::ApiJson;
use crate::app::AppState;
use crate::auth::{AuthUser, UserId};
use crate::error::ApiError;
use crate::video::VideoStatus;

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
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: String,
    limit: Option<i64>,
}

/// One video in the ops listing.
#[derive(Debug, Serialize)]
pub struct OpsVideo {
    video_id: String,
    creator_id: String,
    status: String,
    generation: i64,
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

/// `GET /v1/ops/videos?status=failed|processing`: oldest first, with stage, attempts and age.
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn list_videos(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
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
        .map(|row| OpsVideo {
            age_ms: (now - row.created_at).num_milliseconds(),
            processing_ms: row.processing_since.map(|since| (now - since).num_milliseconds()),
            video_id: row.video_id,
            creator_id: row.creator_user_id,
            status: row.status,
            generation: row.generation,
            failed_reason: row.failed_reason,
            retryable: row.retryable,
            stage: row.stage,
            stage_status: row.stage_status,
            attempts: row.attempts,
            last_error: row.last_error,
            value_score: row.value_score,
            created_at: row.created_at,
        })
        .collect();
    Ok(Json(json!({ "videos": videos })))
}

/// `POST /v1/ops/videos/{id}/reprocess`: restarts the pipeline as a new generation.
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn reprocess(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let video_id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found("video"))?;
    let video = state.db.get_video(video_id).await?.ok_or_else(|| ApiError::not_found("video"))?;
    match state.pipeline.reprocess(video_id, Utc::now()).await? {
        Some(generation) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"video_id": video_id, "generation": generation, "status": "processing"})),
        )),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_reprocessable",
            "only ready or failed videos can be reprocessed",
        )
        .with_details(json!({"status": video.status.as_str()}))),
    }
}

/// Body of `PUT /v1/ops/creators/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatorInputs {
    follower_count: u64,
}

/// `PUT /v1/ops/creators/{id}`: sets a creator's follower count (a value-score input).
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn set_creator(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreatorInputs>,
) -> Result<Json<Value>, ApiError> {
    let creator = UserId::parse(&id).map_err(|e| ApiError::bad_request("invalid_creator_id", e.to_string()))?;
    let followers = i64::try_from(body.follower_count)
        .map_err(|_| ApiError::bad_request("invalid_follower_count", "follower_count is too large"))?;
    state.db.set_follower_count(&creator, followers, Utc::now()).await?;
    Ok(Json(json!({"creator_id": creator, "follower_count": followers})))
}
