//! Playback status and feed (`/v1/videos/{id}`, `/v1/feed/videos`).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde::Deserialize;

use super::extract::{ApiPath, ApiQuery};
use super::openapi::{Authenticated, BadRequest, NotFound};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::delivery::views::{FeedPage, VideoView};
use crate::delivery::{CURSOR_PATTERN, MAX_PAGE};
use crate::model::AuthUser;

/// `GET /v1/videos/{id}`: the canonical playback status. Ready videos are visible to every
/// signed-in viewer; processing and failed ones only to their creator and admins.
#[utoipa::path(
    get,
    path = "/v1/videos/{id}",
    operation_id = "get_video",
    tag = "playback",
    params(("id" = Uuid, Path, description = "video id")),
    responses(
        (status = 200, description = "the video; a processing one carries `Retry-After`", body = VideoView),
        Authenticated, NotFound,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user = %user.id), err(Debug))]
pub async fn show(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
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
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// `next_cursor` of the previous page (opaque).
    #[param(schema_with = cursor_schema)]
    cursor: Option<String>,
    /// Items per page (default 10).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<u32>,
    /// Hand out the first ready item's master and start-rung media playlists inline
    /// (`inline_playlists`), saving a cold start their round trips (default false).
    inline_playlists: Option<bool>,
}

fn cursor_schema() -> utoipa::openapi::Object {
    utoipa::openapi::Object::builder()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(CURSOR_PATTERN))
        .description(Some("An opaque position in the feed, as `next_cursor` answered it"))
        .build()
}

/// `GET /v1/feed/videos`: newest first, keyset-paginated; the viewer's own processing videos
/// appear as placeholders; prefetch hints under the policy's cap.
#[utoipa::path(
    get,
    path = "/v1/feed/videos",
    operation_id = "list_feed",
    tag = "playback",
    params(FeedQuery),
    responses((status = 200, description = "one page", body = FeedPage), BadRequest, Authenticated),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user = %user.id), err(Debug))]
pub async fn feed(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Json<FeedPage>, ApiError> {
    let limit = query.limit.unwrap_or(10);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be 1 to {MAX_PAGE}")));
    }
    let page =
        state.delivery.feed(&user, query.cursor.as_deref(), limit, query.inline_playlists.unwrap_or(false)).await?;
    page.map(Json).map_err(|_| ApiError::bad_request("invalid_cursor", "cursor is not a feed cursor"))
}
