//! The playback beacon (`POST /v1/playback/events`).

use axum::Json;
use axum::extract::State;
use http::StatusCode;

use super::json::ApiJson;
use super::openapi::{Authenticated, JsonBody, TooManyRequests};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::delivery::beacon::{BeaconBatch, BeaconError, BeaconReceipt};
use crate::model::AuthUser;

/// `POST /v1/playback/events`: a batch of startup, rebuffer, progress, completion and support
/// events. Unknown videos are ignored (and counted); too many events per viewer get 429.
#[utoipa::path(
    post,
    path = "/v1/playback/events",
    operation_id = "send_playback_events",
    tag = "playback",
    request_body = BeaconBatch,
    responses(
        (status = 202, description = "what was recorded and what was ignored", body = BeaconReceipt),
        JsonBody, Authenticated, TooManyRequests,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user = %user.id), err(Debug))]
pub async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(batch): ApiJson<BeaconBatch>,
) -> Result<(StatusCode, Json<BeaconReceipt>), ApiError> {
    match state.delivery.record_beacon(&user, batch).await {
        Ok(receipt) => Ok((StatusCode::ACCEPTED, Json(receipt))),
        Err(BeaconError::Invalid(why)) => Err(ApiError::bad_request("invalid_events", why)),
        Err(BeaconError::RateLimited { retry_after }) => {
            Err(ApiError::too_many_requests("rate_limited", "too many playback events", retry_after.as_secs()))
        }
        Err(BeaconError::Db(db)) => Err(db.into()),
    }
}
