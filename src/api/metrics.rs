//! `GET /metrics` (Prometheus text) and the per-route latency middleware.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;

use crate::telemetry;

/// Prometheus exposition of every recorded metric.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn render() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], telemetry::metrics().render())
}

/// Records `http_request_duration_ms{method, route, status}` by matched route (never the raw
/// path, so ids do not explode the label set).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [("method", method), ("route", route), ("status", response.status().as_u16().to_string())];
    metrics::histogram!("http_request_duration_ms", &labels).record(started.elapsed().as_secs_f64() * 1000.0);
    response
}
