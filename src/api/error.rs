//! The one place where errors become HTTP answers.
//!
//! Every error body has the shape `{"error":{"code","message","details"}}`. `code` is stable and
//! machine-readable; `message` is fixed text for clients. Root causes go to the log, never to the
//! client.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection, RawPathParamsRejection};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use crate::db::DbError;
use crate::ingest::IngestError;
use crate::model::{Quota, QuotaExceeded};
use crate::storage::{StorageError, StorageFault};

/// The body of every error answer (for the OpenAPI document).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// The `error` member.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `missing_parts`.
    code: String,
    /// Fixed human-readable text.
    message: String,
    /// Structured details (e.g. `missing_parts`).
    details: Value,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An answer with a status, stable code and client-facing message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let retry_after = (status == StatusCode::SERVICE_UNAVAILABLE).then_some(2);
        ApiError { status, code, message: message.into(), details: json!({}), retry_after }
    }

    /// Attaches structured details (e.g. the missing part numbers).
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Sets `Retry-After` (seconds, at least 1).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// 429 with the delay after which the caller may try again.
    pub fn too_many_requests(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, message).retry_after(retry_after)
    }

    /// 429 for a per-user quota, or 507 for the quota of reserved bytes, with `Retry-After`
    /// when the store knows when the quota frees up.
    pub fn quota(refusal: QuotaExceeded) -> Self {
        let status = match refusal.quota {
            Quota::ReservedBytes => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::TOO_MANY_REQUESTS,
        };
        let details = json!({"quota": refusal.quota.as_str(), "limit": refusal.limit, "used": refusal.used});
        let error = Self::new(status, "quota_exceeded", refusal.to_string()).with_details(details);
        match refusal.retry_after {
            Some(seconds) => error.retry_after(seconds),
            None => error,
        }
    }

    /// 405 for a method the route does not serve (the router adds `Allow`).
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
    }

    /// 401.
    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404, also used for resources the caller may not see.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 400 for malformed input.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 503 while a dependency is down.
    pub fn unavailable(what: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            format!("{what} is unavailable, retry shortly"),
        )
    }

    /// 500 with a fixed message; the cause is logged by the caller's `From` impl.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match &rejection {
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            JsonRejection::JsonSyntaxError(_) => "invalid_json",
            JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                "payload_too_large"
            }
            _ => "invalid_body",
        };
        let status = match rejection.status() {
            status @ (StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::PAYLOAD_TOO_LARGE) => status,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<RawPathParamsRejection> for ApiError {
    fn from(rejection: RawPathParamsRejection) -> Self {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(_) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::unavailable("the database")
            }
            DbError::Quota(refusal) => ApiError::quota(refusal),
            other => {
                tracing::error!(error = %other, "database error");
                ApiError::internal()
            }
        }
    }
}

impl From<crate::pipeline::PipelineError> for ApiError {
    fn from(err: crate::pipeline::PipelineError) -> Self {
        match err {
            crate::pipeline::PipelineError::Db(db) => db.into(),
        }
    }
}

impl From<StorageError> for ApiError {
    /// Only a transient store failure is a `503` worth retrying; a full store is `507`, and a
    /// permanent refusal is a `500` without `Retry-After` (clients must not retry it forever).
    fn from(err: StorageError) -> Self {
        match err.fault() {
            StorageFault::Transient => {
                tracing::warn!(error = %err, "object store unavailable");
                ApiError::unavailable("the object store")
            }
            StorageFault::Full => {
                tracing::error!(error = %err, "object store out of space");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "insufficient_storage",
                    "the object store is out of space",
                )
            }
            StorageFault::Missing | StorageFault::Refused => {
                tracing::error!(error = %err, "object store refused the request");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage_error",
                    "the object store refused the request",
                )
            }
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        use IngestError as E;
        let message = err.to_string();
        match err {
            E::Invalid { code, .. } => ApiError::bad_request(code, message),
            E::NotFound => ApiError::not_found("upload"),
            E::NoSuchPart { .. } => ApiError::new(StatusCode::NOT_FOUND, "part_not_found", message),
            E::NotOpen { status } => ApiError::new(StatusCode::CONFLICT, "upload_not_open", message)
                .with_details(json!({"status": status.as_str()})),
            E::Completing => ApiError::new(StatusCode::CONFLICT, "upload_completing", message),
            E::SizeMismatch { expected, received, .. } => ApiError::bad_request("part_size_mismatch", message)
                .with_details(json!({"expected_bytes": expected, "received_bytes": received})),
            E::ChecksumMismatch { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "checksum_mismatch", message),
            E::PartNotVerified { part_number, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "part_not_verified", message)
                    .with_details(json!({"part_number": part_number}))
            }
            E::MissingParts(ref missing) => ApiError::new(StatusCode::CONFLICT, "missing_parts", message)
                .with_details(json!({"missing_parts": missing})),
            E::DirectUploadsDisabled => ApiError::new(StatusCode::CONFLICT, "direct_uploads_disabled", message),
            E::Db(db) => db.into(),
            E::Storage(storage) if storage.fault() == StorageFault::Missing => ApiError::new(
                StatusCode::CONFLICT,
                "upload_data_lost",
                "the stored parts of this upload are gone; start a new upload",
            ),
            E::Storage(storage) => storage.into(),
            E::BodyRead(_) => ApiError::bad_request("body_read_failed", "the request body ended early"),
        }
    }
}
