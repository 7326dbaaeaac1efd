//! The origin (`/origin/packaged/...`): packaged HLS for players and CDNs. No auth: what is
//! served is what a CDN would cache; unpublished videos are marked `no-store`.

use axum::body::Body;
use axum::extract::{Path, State};
use http::{HeaderMap, Response};

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::delivery::origin::OriginError;

/// `GET|HEAD /origin/{*path}`.
pub async fn serve(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response<Body>, ApiError> {
    state.delivery.serve(&path, &headers).await.map_err(|err| match err {
        OriginError::NotFound => ApiError::not_found("object"),
        OriginError::Db(db) => db.into(),
        OriginError::Storage(storage) => storage.into(),
    })
}
