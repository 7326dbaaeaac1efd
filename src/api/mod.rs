//! HTTP API: the route table, one handler module per resource, and the layers around them.
//!
//! Every route is registered through `utoipa-axum` from the same annotation that documents it,
//! so `/openapi.json` cannot drift from what is served. Every answer outside a handler (unknown
//! route, wrong method, extractor rejections) is the same structured JSON error.

pub mod auth;
pub mod error;
mod extract;
mod health;
mod json;
mod metrics;
mod openapi;
mod ops;
mod origin;
mod playback;
pub mod state;
mod uploads;
mod videos;

use std::future::Future;
use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderName, Method, StatusCode, Version, header};
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use uploads::SHA256_HEADER;

use crate::api::error::ApiError;
use crate::config::Config;
use state::AppState;

/// Every route reel serves, with its OpenAPI document.
///
/// The origin routes get only the latency metric and CORS: their answers are immutable media or
/// playlists with a precomputed gzip encoding, so the compression and trace layers would only
/// add per-request cost (a CDN or the nginx tier logs the requests). Everything else, the web app
/// included, goes through compression, CORS and tracing.
pub fn router(state: AppState, config: &Config) -> Router {
    let (api, mut spec) = documented_routes().split_for_parts();
    let (origin, origin_spec) = origin_routes().split_for_parts();
    spec.merge(origin_spec);
    let spec = openapi::complete(spec, config);
    let cors = cors(&config.delivery.cors_allowed_origins);
    let origin = origin
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .route_layer(axum::middleware::from_fn(metrics::track))
        .layer(cors.clone());
    api.route("/openapi.json", get(move || async move { axum::Json(spec) }))
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(web_app(&config.server.web_dir))
        .layer(compression())
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .merge(origin)
        .with_state(state)
}

/// The id in a path: anything that is not a UUID names nothing, so it is a 404 like an unknown id.
fn path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what))
}

fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::render))
        .routes(routes!(uploads::create))
        .routes(routes!(uploads::show, uploads::abort))
        .routes(routes!(uploads::register_parts))
        .routes(routes!(uploads::put_part))
        .routes(routes!(uploads::complete))
        .routes(routes!(videos::show))
        .routes(routes!(videos::feed))
        .routes(routes!(playback::events))
        .routes(routes!(ops::list_videos))
        .routes(routes!(ops::reprocess))
        .routes(routes!(ops::set_creator))
        .routes(routes!(ops::video_policy, ops::set_video_policy))
        .routes(routes!(ops::delivery_defaults, ops::set_delivery_defaults))
}

/// The origin (`/origin/packaged/...`), layered apart from the API (see [`router`]).
fn origin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(origin::top))
        .routes(routes!(origin::nested))
        .routes(routes!(origin::generation))
}

/// The web app (`server.web_dir`) for every path no route matched; API-looking paths keep the
/// structured 404, other methods than `GET`/`HEAD` the structured 405, and unknown app paths get
/// `index.html` (client-side routing).
fn web_app(
    dir: &Path,
) -> impl Fn(Request) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>> + Clone + Send + Sync + 'static {
    let files = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
    let index_exists = dir.join("index.html").is_file();
    move |request: Request| {
        let files = files.clone();
        Box::pin(async move {
            let path = request.uri().path();
            let api = ["/v1/", "/origin/", "/metrics", "/openapi.json"].iter().any(|p| path.starts_with(p));
            if api || !index_exists {
                return ApiError::not_found("route").into_response();
            }
            if request.method() != Method::GET && request.method() != Method::HEAD {
                let mut refused = ApiError::method_not_allowed().into_response();
                refused.headers_mut().insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
                return refused;
            }
            match files.oneshot(request).await {
                Ok(response) => response.into_response(),
                Err(never) => match never {},
            }
        })
    }
}

/// gzip for JSON (and anything else served as a playlist): media is already compressed, and the
/// origin serves playlists from a precomputed gzip encoding (AUTHORING 10.1).
fn compression() -> CompressionLayer<impl tower_http::compression::Predicate> {
    CompressionLayer::new().gzip(true).compress_when(
        |status: StatusCode, _: Version, headers: &HeaderMap, _: &http::Extensions| {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
            status == StatusCode::OK
                && (content_type.starts_with("application/vnd.apple.mpegurl")
                    || content_type.starts_with("application/json"))
        },
    )
}

fn cors(allowed: &[String]) -> CorsLayer {
    let origins = if allowed.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(allowed.iter().filter_map(|o| o.parse().ok()))
    };
    let exposed = ["etag", "content-range", "content-length", "accept-ranges", "retry-after", "x-reel-cache-tier"];
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers(exposed.map(HeaderName::from_static))
        .max_age(std::time::Duration::from_secs(86_400))
}
