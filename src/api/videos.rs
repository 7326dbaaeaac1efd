//! Playback status and feed (`/v1/videos/{id}`, `/v1/feed/videos`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde::Deserialize;

use crate::api::error::{ApiError, ErrorBody};
use crate::api::state::AppState;
use crate::delivery::views::{FeedPage, VideoView};
use crate::model::AuthUser;

/// `GET /v1/videos/{id}`: the canonical playback status. Ready videos are visible to every
/// signed-in viewer; processing and failed ones only to their creator and admins.
#[utoipa::path(get, path = "/v1/videos/{id}", tag = "playback", params(("id" = String, Path, description = "video id")), responses((status = 200, body = VideoView), (status = 401, description = "missing or invalid token", body = ErrorBody), (status = 404, description = "unknown, or not visible to the caller", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user = %user.id), err(Debug))]
pub async fn show(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Response, ApiError> {
    let video_id = super::path_id(&id, "video")?;
    let view = state.delivery.video(&user, video_id).await?.ok_or_else(|| ApiError::not_found("video"))?;
    let retry_after = match &view {
        VideoView::Processing(p) => Some(p.poll_after_ms.div_ceil(1000).max(1)),
        _ => None,
    };
    let mut response = Json(view).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Ok(response)
}

/// Query of the feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FeedQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page (1–50, default 10).
    limit: Option<u32>,
}

/// `GET /v1/feed/videos`: newest first, keyset-paginated; the viewer's own processing videos
/// appear as placeholders; prefetch hints under the policy's cap.
#[utoipa::path(get, path = "/v1/feed/videos", tag = "playback", params(FeedQuery), responses((status = 200, body = FeedPage), (status = 400, description = "invalid input", body = ErrorBody), (status = 401, description = "missing or invalid token", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user = %user.id), err(Debug))]
pub async fn feed(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<FeedQuery>,
) -> Result<Json<FeedPage>, ApiError> {
    let page = state.delivery.feed(&user, query.cursor.as_deref(), query.limit.unwrap_or(10)).await?;
    page.map(Json).map_err(|_| ApiError::bad_request("invalid_cursor", "cursor is not one this server issued"))
}
