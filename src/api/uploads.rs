//! Upload session endpoints (`/v1/videos/uploads`).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiPath, OwnedUpload};
use super::json::ApiJson;
use super::openapi::{Authenticated, BadRequest, Conflict, JsonBody, NotFound, Unprocessable};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::ingest::plan::CreateUpload;
use crate::ingest::{PartDeclaration, PartTarget, RegisterPart};
use crate::model::{AuthUser, StoredPart, UploadId, UploadSession, UploadStatus, VideoId};

/// Padded standard base64 that ignores the unused low bits of the last character, so every
/// string the documented header patterns allow decodes.
const BASE64: GeneralPurpose =
    GeneralPurpose::new(&STANDARD, GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true));

/// Header carrying a part's SHA-256 (hex or base64).
pub const SHA256_HEADER: &str = "x-reel-checksum-sha256";

/// An upload session as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    upload_id: UploadId,
    status: UploadStatus,
    filename: String,
    content_type: String,
    size_bytes: u64,
    part_size: u64,
    part_count: u32,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// Set once completed: the seed's derived video linkage.
    video_id: Option<VideoId>,
    /// Parts the server holds, so a client can resume.
    received_parts: Vec<StoredPart>,
    /// Where to send each part still missing (empty once the session is closed).
    parts: Vec<PartTarget>,
}

impl UploadView {
    fn new(session: &UploadSession, received_parts: Vec<StoredPart>, parts: Vec<PartTarget>) -> Self {
        UploadView {
            upload_id: session.id,
            status: session.status,
            filename: session.filename.clone(),
            content_type: session.content_type.clone(),
            size_bytes: session.size_bytes,
            part_size: session.part_size,
            part_count: session.part_count,
            created_at: session.created_at,
            expires_at: session.expires_at,
            video_id: (session.status == UploadStatus::Completed).then_some(session.video_id),
            received_parts,
            parts,
        }
    }
}

/// `POST /v1/videos/uploads`: opens a session and answers the part plan.
#[utoipa::path(
    post,
    path = "/v1/videos/uploads",
    operation_id = "create_upload",
    tag = "uploads",
    request_body = CreateUpload,
    responses(
        (status = 201, description = "the session and where to send each part", body = UploadView, links(
            ("get_upload" = (operation_id = "get_upload", parameters(("id" = "$response.body#/upload_id")))),
            ("put_part" = (operation_id = "put_part", parameters(("id" = "$response.body#/upload_id"), ("part" = "$response.body#/parts/0/part_number")))),
            ("register_parts" = (operation_id = "register_parts", parameters(("id" = "$response.body#/upload_id")))),
            ("complete_upload" = (operation_id = "complete_upload", parameters(("id" = "$response.body#/upload_id")))),
            ("abort_upload" = (operation_id = "abort_upload", parameters(("id" = "$response.body#/upload_id")))),
        )),
        JsonBody, Authenticated,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user = %user.id), err(Debug))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(request): ApiJson<CreateUpload>,
) -> Result<(StatusCode, Json<UploadView>), ApiError> {
    let session = state.ingest.create(&user.id, request, Utc::now()).await?;
    let targets = state.ingest.targets(&session, 1..=session.part_count)?;
    Ok((StatusCode::CREATED, Json(UploadView::new(&session, Vec::new(), targets))))
}

/// `GET /v1/videos/uploads/{id}`: status, held parts, targets for the missing ones. An aborted
/// session was deleted (`DELETE`), so it is a 404 like an unknown one.
#[utoipa::path(
    get,
    path = "/v1/videos/uploads/{id}",
    operation_id = "get_upload",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "upload id")),
    responses((status = 200, description = "the session", body = UploadView), Authenticated, NotFound),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user = %upload.user.id), err(Debug))]
pub async fn show(State(state): State<AppState>, upload: OwnedUpload) -> Result<Json<UploadView>, ApiError> {
    let session = upload.session;
    if session.status == UploadStatus::Aborted {
        return Err(ApiError::not_found("upload"));
    }
    let received = state.ingest.parts(&session).await?;
    let missing = (1..=session.part_count).filter(|n| !received.iter().any(|p| p.part_number == *n));
    let targets = if session.status.accepts_parts() { state.ingest.targets(&session, missing)? } else { Vec::new() };
    Ok(Json(UploadView::new(&session, received, targets)))
}

/// The answer to a part PUT.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartReceipt {
    /// 1-based part number.
    part_number: u32,
    /// The stored part's ETag.
    etag: String,
    /// SHA-256 of the part (lower-case hex), when one was declared.
    sha256: Option<String>,
}

/// `PUT /v1/videos/uploads/{id}/parts/{n}`: streams a part to storage.
#[utoipa::path(
    put,
    path = "/v1/videos/uploads/{id}/parts/{part}",
    operation_id = "put_part",
    tag = "uploads",
    params(
        ("id" = Uuid, Path, description = "upload id"),
        ("part" = u32, Path, minimum = 1, maximum = 10000, description = "1-based part number, at most the session's `part_count`"),
        ("content-md5" = Option<String>, Header, pattern = r"^[A-Za-z0-9+/]{22}==$", description = "base64 MD5 of the part (16 bytes)"),
        ("x-reel-checksum-sha256" = Option<String>, Header, pattern = r"^([0-9A-Fa-f]{64}|[A-Za-z0-9+/]{43}=)$", description = "SHA-256 of the part: 64 hex digits or the base64 of 32 bytes"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "exactly the part's planned size in bytes"),
    responses(
        (status = 200, description = "the part is stored", body = PartReceipt, links(
            ("complete_upload" = (operation_id = "complete_upload", parameters(("id" = "$request.path.id")))),
        )),
        BadRequest, Authenticated, NotFound, Conflict, Unprocessable,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(part = %path.1), err(Debug))]
pub async fn put_part(
    State(state): State<AppState>,
    upload: Result<OwnedUpload, ApiError>,
    ApiPath(path): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PartReceipt>, ApiError> {
    let prepared = upload.and_then(|upload| {
        let part_number: u32 =
            path.1.parse().map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "part_not_found", "no such part"))?;
        let expected = state.ingest.prepare_part(&upload.session, part_number, &declaration(&headers)?, Utc::now())?;
        Ok((upload.session, part_number, expected))
    });
    let (session, part_number, expected) = match prepared {
        Ok(prepared) => prepared,
        Err(refusal) => {
            drain(body).await;
            return Err(refusal);
        }
    };
    let stored = state.ingest.put_part(&session, part_number, expected, body.into_data_stream(), Utc::now()).await?;
    Ok(Json(PartReceipt { part_number: stored.part_number, etag: stored.etag, sha256: stored.sha256 }))
}

/// Reads and discards (up to a bound) the body of a refused part, so the client receives the
/// answer rather than a connection reset in the middle of its upload (nginx's lingering close).
async fn drain(body: Body) {
    const LIMIT: usize = 64 << 20;
    const PATIENCE: Duration = Duration::from_secs(10);
    let mut stream = body.into_data_stream();
    let mut read = 0;
    let discard = async {
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len();
            if read > LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(PATIENCE, discard).await;
}

fn declaration(headers: &HeaderMap) -> Result<PartDeclaration, ApiError> {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or_default().trim().to_owned());
    let content_length = text("content-length")
        .map(|v| {
            v.parse::<u64>().map_err(|_| ApiError::bad_request("invalid_header", "Content-Length is not a number"))
        })
        .transpose()?;
    let md5 =
        text("content-md5")
            .map(|v| {
                BASE64.decode(&v).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
                    ApiError::bad_request("invalid_header", "Content-MD5 must be the base64 of 16 bytes")
                })
            })
            .transpose()?;
    let sha256 = text(SHA256_HEADER)
        .map(|v| {
            digest::<32>(&v).ok_or_else(|| {
                ApiError::bad_request("invalid_header", "x-reel-checksum-sha256 must be 32 bytes in hex or base64")
            })
        })
        .transpose()?;
    Ok(PartDeclaration { content_length, md5, sha256 })
}

fn digest<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = if text.len() == N * 2 { hex::decode(text).ok() } else { BASE64.decode(text).ok() }?;
    bytes.try_into().ok()
}

/// The body of `POST /v1/videos/uploads/{id}/parts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterParts {
    /// The parts, each at most once.
    #[schema(min_items = 1, max_items = 10000)]
    parts: Vec<RegisterPart>,
}

/// The answer to a part registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredParts {
    /// Every part the server now holds.
    parts: Vec<StoredPart>,
}

/// `POST /v1/videos/uploads/{id}/parts`: registers parts PUT straight to the bucket.
#[utoipa::path(
    post,
    path = "/v1/videos/uploads/{id}/parts",
    operation_id = "register_parts",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "upload id")),
    request_body = RegisterParts,
    responses(
        (status = 200, description = "the parts are registered", body = RegisteredParts),
        JsonBody, Authenticated, NotFound, Conflict, Unprocessable,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user = %upload.user.id), err(Debug))]
pub async fn register_parts(
    State(state): State<AppState>,
    upload: OwnedUpload,
    ApiJson(body): ApiJson<RegisterParts>,
) -> Result<Json<RegisteredParts>, ApiError> {
    let parts = state.ingest.register_parts(&upload.session, body.parts, Utc::now()).await?;
    Ok(Json(RegisteredParts { parts }))
}

/// The answer to completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct Completed {
    /// The video, `processing` until the pipeline publishes it.
    video_id: VideoId,
    /// The video's status (`processing`, or later `ready`/`failed` on a repeated call).
    #[schema(pattern = "^(processing|ready|failed)$")]
    status: &'static str,
}

/// `POST /v1/videos/uploads/{id}/complete`: assembles and hands the video to the pipeline.
#[utoipa::path(
    post,
    path = "/v1/videos/uploads/{id}/complete",
    operation_id = "complete_upload",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "upload id")),
    responses(
        (status = 202, description = "the video exists and is processing", body = Completed, links(
            ("get_video" = (operation_id = "get_video", parameters(("id" = "$response.body#/video_id")))),
            ("get_video_policy" = (operation_id = "get_video_policy", parameters(("id" = "$response.body#/video_id")))),
            ("set_video_policy" = (operation_id = "set_video_policy", parameters(("id" = "$response.body#/video_id")))),
            ("reprocess_video" = (operation_id = "reprocess_video", parameters(("id" = "$response.body#/video_id")))),
        )),
        Authenticated, NotFound, Conflict, Unprocessable,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user = %upload.user.id), err(Debug))]
pub async fn complete(
    State(state): State<AppState>,
    upload: OwnedUpload,
) -> Result<(StatusCode, Json<Completed>), ApiError> {
    let video_id = state.ingest.complete(&upload.session, Utc::now()).await?;
    state.pipeline.wake();
    let status = match state.db.get_video(video_id).await? {
        Some(video) => video.status.as_str(),
        None => "processing",
    };
    Ok((StatusCode::ACCEPTED, Json(Completed { video_id, status })))
}

/// `DELETE /v1/videos/uploads/{id}`: aborts and frees staged data.
#[utoipa::path(
    delete,
    path = "/v1/videos/uploads/{id}",
    operation_id = "abort_upload",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "upload id")),
    responses((status = 204, description = "aborted (or already aborted)"), Authenticated, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(user = %upload.user.id), err(Debug))]
pub async fn abort(State(state): State<AppState>, upload: OwnedUpload) -> Result<StatusCode, ApiError> {
    state.ingest.abort(&upload.session, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
