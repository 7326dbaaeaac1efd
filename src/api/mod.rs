//! HTTP API: the route table. One handler module per resource.

mod health;
mod json;
mod ops;
mod uploads;

use axum::Router;
use axum::routing::{get, post, put};
use tower_http::trace::TraceLayer;

pub use uploads::SHA256_HEADER;

use crate::app::AppState;
use crate::error::ApiError;

/// Every route reel serves.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/v1/videos/uploads", post(uploads::create))
        .route("/v1/videos/uploads/{id}", get(uploads::show).delete(uploads::abort))
        .route("/v1/videos/uploads/{id}/parts", post(uploads::register_parts))
        .route("/v1/videos/uploads/{id}/parts/{part}", put(uploads::put_part))
        .route("/v1/videos/uploads/{id}/complete", post(uploads::complete))
        .route("/v1/ops/videos", get(ops::list_videos))
        .route("/v1/ops/videos/{id}/reprocess", post(ops::reprocess))
        .route("/v1/ops/creators/{id}", put(ops::set_creator))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
