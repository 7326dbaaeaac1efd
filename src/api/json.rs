//! A JSON extractor whose rejections use reel's error body.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;

use crate::error::ApiError;

/// `axum::Json`, answering malformed bodies with a structured 400/415.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match rejection {
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            JsonRejection::JsonSyntaxError(_) => "invalid_json",
            _ => "invalid_body",
        };
        ApiError::new(status, code, rejection.body_text())
    }
}
