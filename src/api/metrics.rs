//! `GET /metrics` (Prometheus text) and the per-route latency middleware.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Method, header};
use metrics::Histogram;

use crate::api::state::AppState;
use crate::telemetry;

/// Prometheus exposition of every recorded metric.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    state.delivery.record_hot_tier_ratio();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], telemetry::metrics().render())
}

/// Histogram handles by route, then by (method, status): registered once per combination, so
/// a request allocates no label strings and does no registry lookup.
type Handles = HashMap<Box<str>, Vec<(Method, u16, Histogram)>>;
static HANDLES: LazyLock<RwLock<Handles>> = LazyLock::new(RwLock::default);

fn histogram(method: &Method, route: &str, status: u16) -> Histogram {
    let found = |handles: &Handles| {
        handles.get(route)?.iter().find(|(m, s, _)| m == method && *s == status).map(|(_, _, h)| h.clone())
    };
    if let Some(handle) = HANDLES.read().ok().and_then(|handles| found(&handles)) {
        return handle;
    }
    let labels = [("method", method.to_string()), ("route", route.to_owned()), ("status", status.to_string())];
    let handle = metrics::histogram!("http_request_duration_ms", &labels);
    if let Ok(mut handles) = HANDLES.write() {
        if found(&handles).is_none() {
            handles.entry(route.into()).or_default().push((method.clone(), status, handle.clone()));
        }
    }
    handle
}

/// Records `http_request_duration_ms{method, route, status}` by matched route (never the raw
/// path, so ids do not explode the label set).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    histogram(&method, route, response.status().as_u16()).record(started.elapsed().as_secs_f64() * 1000.0);
    response
}
