//! The playback beacon (`POST /v1/playback/events`).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::json::ApiJson;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::state::AppState;
use crate::delivery::beacon::{BeaconBatch, BeaconError, BeaconReceipt};
use crate::model::AuthUser;

/// `POST /v1/playback/events`: a batch of startup, rebuffer, progress, completion and support
/// events. Unknown videos are ignored (and counted); too many events per viewer get 429.
#[utoipa::path(post, path = "/v1/playback/events", tag = "playback", request_body = BeaconBatch, responses((status = 202, body = BeaconReceipt), (status = 400, description = "invalid input", body = ErrorBody), (status = 401, description = "missing or invalid token", body = ErrorBody), (status = 429, description = "too many events", body = ErrorBody)), security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user = %user.id), err(Debug))]
pub async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(batch): ApiJson<BeaconBatch>,
) -> Result<Response, ApiError> {
    match state.delivery.record_beacon(&user, batch).await {
        Ok(receipt) => Ok((StatusCode::ACCEPTED, Json(receipt)).into_response()),
        Err(BeaconError::Invalid(why)) => Err(ApiError::bad_request("invalid_events", why)),
        Err(BeaconError::RateLimited { retry_after }) => {
            let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many playback events")
                .into_response();
            let seconds = retry_after.as_secs().max(1);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            Ok(response)
        }
        Err(BeaconError::Db(db)) => Err(db.into()),
    }
}
