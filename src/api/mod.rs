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
pub mod serve;
pub mod state;
mod uploads;
mod videos;
mod webhooks;

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
pub fn router(state: AppState, config: &Config) -> Router {
    let (api, spec) = documented_routes().split_for_parts();
    let spec = openapi::complete(spec, config);
    let router = api
        .route("/openapi.json", get(move || async move { axum::Json(spec) }))
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(web_app(&config.server.web_dir))
        .layer(compression())
        .layer(cors(&config.delivery.cors_allowed_origins))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    serve::limit_concurrency(router, config.server.max_concurrent_requests)
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
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::show, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::retry))
        .routes(routes!(origin::top))
        .routes(routes!(origin::nested))
        .routes(routes!(origin::generation))
        .routes(routes!(origin::attempt))
        .routes(routes!(origin::signed_top))
        .routes(routes!(origin::signed_nested))
        .routes(routes!(origin::signed_generation))
        .routes(routes!(origin::signed_attempt))
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

/// gzip for playlists and JSON only: media is already compressed, and compressing it would break
/// byte ranges (AUTHORING 10.1 asks for gzip-compressed playlists).
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
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(Any)
        .expose_headers(exposed.map(HeaderName::from_static))
        .max_age(std::time::Duration::from_secs(86_400))
}
