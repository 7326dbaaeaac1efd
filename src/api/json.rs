//! A JSON extractor whose rejections use reel's error body.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use http::StatusCode;

use crate::api::error::ApiError;

/// `axum::Json`, answering malformed bodies with a structured 400 (415 for a wrong content
/// type), whether the JSON is broken or merely of the wrong shape.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match rejection {
            JsonRejection::MissingJsonContentType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            _ => (StatusCode::BAD_REQUEST, "invalid_body"),
        };
        ApiError::new(status, code, rejection.body_text())
    }
}
