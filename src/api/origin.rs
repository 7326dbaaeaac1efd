//! The origin (`/origin/packaged/...`): packaged HLS for players and CDNs. No auth: what is
//! served is what a CDN would cache; unpublished videos are marked `no-store`.
//!
//! The packaged tree (`storage::keys`) has four path shapes, one route each, so every path
//! parameter has a schema. All four serve `GET` and `HEAD` through the same code, which parses
//! the whole path with `keys::parse_packaged`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use http::{HeaderMap, Response, Uri};
use utoipa::IntoResponses;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, Header, KnownFormat, Object, RefOr, Schema, SchemaFormat, Type};

use super::openapi::{NotFound, Unavailable};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::delivery::origin::OriginError;

/// The origin's own answers: the object, a range of it, not modified, range not satisfiable.
pub struct ObjectAnswers;

impl IntoResponses for ObjectAnswers {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        let text = |description: &str| {
            let mut header = Header::new(Schema::Object(Object::builder().schema_type(Type::String).build()));
            header.description = Some(description.to_owned());
            header
        };
        let binary = || {
            ContentBuilder::new()
                .schema(Some(
                    Object::builder()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                        .build(),
                ))
                .build()
        };
        let object = |description: &str| {
            let mut response = ResponseBuilder::new().description(description);
            for media_type in ["application/vnd.apple.mpegurl", "video/mp4", "video/iso.segment", "image/jpeg"] {
                response = response.content(media_type, binary());
            }
            response
                .header("etag", text("Strong ETag of the object"))
                .header("cache-control", text("`public, max-age=31536000, immutable` for published media, `public, max-age=N` for published playlists, `no-store` otherwise"))
                .header("x-reel-cache-tier", text("`hot`, `warm` or `cold`: where a CDN should keep the video"))
        };
        BTreeMap::from([
            ("200".to_owned(), RefOr::T(object("The object").build())),
            (
                "206".to_owned(),
                RefOr::T(
                    object("One byte range of the object (single `Range`)")
                        .header("content-range", text("`bytes start-end/length`"))
                        .build(),
                ),
            ),
            ("304".to_owned(), RefOr::T(ResponseBuilder::new().description("Not modified (`If-None-Match`)").build())),
            (
                "416".to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description("Range not satisfiable")
                        .header("content-range", text("`bytes */length`"))
                        .build(),
                ),
            ),
        ])
    }
}

/// `GET|HEAD /origin/packaged/{video_id}/hls/{file}`: a top-level file of generation 1.
#[utoipa::path(
    get,
    path = "/origin/packaged/{video_id}/hls/{file}",
    operation_id = "origin_top",
    tag = "origin",
    params(
        ("video_id" = Uuid, Path, description = "video id"),
        ("file" = String, Path, pattern = r"^(master(\.v2(-a[0-9]+)?)?(~[0-9]+p)?\.m3u8|preview\.m3u8|poster\.jpg)$", description = "a master (`master.m3u8`, the ladder's `master.v2.m3u8`), a capped master (`master~540p.m3u8`), the preview master or the poster"),
    ),
    responses(ObjectAnswers, NotFound, Unavailable)
)]
pub async fn top(state: State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response<Body>, ApiError> {
    serve(state, uri, headers).await
}

/// `GET|HEAD /origin/packaged/{video_id}/hls/{dir}/{file}`: a rendition's file (generation 1),
/// or a top-level file of generation `g{n}` or of a restarted phase 1 `e{n}`.
#[utoipa::path(
    get,
    path = "/origin/packaged/{video_id}/hls/{dir}/{file}",
    operation_id = "origin_nested",
    tag = "origin",
    params(
        ("video_id" = Uuid, Path, description = "video id"),
        ("dir" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", description = "a rendition (e.g. `540p`, `audio`), a later generation `g{n}` or a restarted phase 1 `e{n}`"),
        ("file" = String, Path, pattern = r"^(index\.m3u8|init\.mp4|seg-[0-9]{5,}\.m4s|master(\.v2(-a[0-9]+)?)?(~[0-9]+p)?\.m3u8|preview\.m3u8|poster\.jpg)$", description = "in a rendition: its playlist, init segment or a media segment; in `g{n}` or `e{n}`: a master or the poster"),
    ),
    responses(ObjectAnswers, NotFound, Unavailable)
)]
pub async fn nested(state: State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response<Body>, ApiError> {
    serve(state, uri, headers).await
}

/// `GET|HEAD /origin/packaged/{video_id}/hls/{outer}/{inner}/{file}`: a rendition's file in a
/// generation `g{n}` or a restarted phase `e{n}`/`l{n}`, or a master of a restarted phase 1 of a
/// later generation (`g{n}/e{m}/master.m3u8`).
#[utoipa::path(
    get,
    path = "/origin/packaged/{video_id}/hls/{outer}/{inner}/{file}",
    operation_id = "origin_generation",
    tag = "origin",
    params(
        ("video_id" = Uuid, Path, description = "video id"),
        ("outer" = String, Path, pattern = r"^[gel][0-9]+$", description = "a generation `g{n}` (n ≥ 2) or a restarted phase `e{n}`/`l{n}` (n ≥ 2)"),
        ("inner" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", description = "a rendition (e.g. `540p`, `audio`), or `e{n}`/`l{n}` inside a generation"),
        ("file" = String, Path, pattern = r"^(index\.m3u8|init\.mp4|seg-[0-9]{5,}\.m4s|master(\.v2(-a[0-9]+)?)?(~[0-9]+p)?\.m3u8|preview\.m3u8|poster\.jpg)$", description = "a rendition's playlist, init segment or media segment, or a master"),
    ),
    responses(ObjectAnswers, NotFound, Unavailable)
)]
pub async fn generation(state: State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response<Body>, ApiError> {
    serve(state, uri, headers).await
}

/// `GET|HEAD /origin/packaged/{video_id}/hls/{generation}/{attempt}/{rendition}/{file}`: a
/// rendition's file written by a restarted phase (`e{n}`, `l{n}`) of a later generation.
#[utoipa::path(
    get,
    path = "/origin/packaged/{video_id}/hls/{generation}/{attempt}/{rendition}/{file}",
    operation_id = "origin_attempt",
    tag = "origin",
    params(
        ("video_id" = Uuid, Path, description = "video id"),
        ("generation" = String, Path, pattern = r"^g[0-9]+$", description = "generation directory, `g2` and up"),
        ("attempt" = String, Path, pattern = r"^[el][0-9]+$", description = "a restarted phase 1 `e{n}` or phase 2 `l{n}` (n ≥ 2)"),
        ("rendition" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$", description = "a rendition (e.g. `540p`, `audio`)"),
        ("file" = String, Path, pattern = r"^(index\.m3u8|init\.mp4|seg-[0-9]{5,}\.m4s)$", description = "the rendition's playlist, init segment or a media segment"),
    ),
    responses(ObjectAnswers, NotFound, Unavailable)
)]
pub async fn attempt(state: State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response<Body>, ApiError> {
    serve(state, uri, headers).await
}

async fn serve(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Result<Response<Body>, ApiError> {
    let path = uri.path().strip_prefix("/origin/").unwrap_or_default();
    state.delivery.serve(path, &headers).await.map_err(|err| match err {
        OriginError::NotFound => ApiError::not_found("object"),
        OriginError::Db(db) => db.into(),
        OriginError::Storage(storage) => storage.into(),
    })
}
