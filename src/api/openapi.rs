//! The OpenAPI document: everything comes from the handlers' annotations, plus the origin's
//! wildcard route and `/openapi.json` itself, documented here by hand.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The document's root.
#[derive(OpenApi)]
#[openapi(
    info(title = "reel", description = "Video ingest and delivery: resumable uploads, an HLS/CMAF pipeline, playback and an origin."),
    modifiers(&BearerAuth),
    tags(
        (name = "uploads", description = "Upload sessions and parts"),
        (name = "playback", description = "Playback status, feed and beacon"),
        (name = "ops", description = "Operations (admin tokens)"),
        (name = "origin", description = "Packaged HLS for players and CDNs"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Adds the hand-registered routes to the generated document.
pub fn complete(mut spec: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let object = ParameterBuilder::new()
        .name("path")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("packaged/{video_id}/hls/... (master.m3u8, master~{N}p.m3u8, {rendition}/index.m3u8, init.mp4, seg-NNNNN.m4s, poster.jpg)"))
        .build();
    let origin = OperationBuilder::new()
        .tag("origin")
        .summary(Some("Serve a packaged object (GET or HEAD; ETag/304, single Range/206/416, CORS)"))
        .parameter(object)
        .response("200", ResponseBuilder::new().description("the object"))
        .response("206", ResponseBuilder::new().description("a byte range"))
        .response("304", ResponseBuilder::new().description("not modified"))
        .response("404", ResponseBuilder::new().description("no such object"))
        .response("416", ResponseBuilder::new().description("range not satisfiable"))
        .build();
    spec.paths.paths.insert("/origin/{path}".into(), PathItem::new(HttpMethod::Get, origin));
    let document = OperationBuilder::new()
        .tag("operations")
        .summary(Some("This document"))
        .response("200", ResponseBuilder::new().description("OpenAPI 3.1 JSON"))
        .build();
    spec.paths.paths.insert("/openapi.json".into(), PathItem::new(HttpMethod::Get, document));
    spec
}
