//! Extractors whose rejections use reel's error body, and the caller's upload session.

use axum::extract::{FromRequest, FromRequestParts, RawPathParams};
use http::request::Parts;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::model::{AuthUser, UploadSession};

/// `axum::extract::Query`, answering an unparsable or out-of-type query with a structured 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path`, answering undecodable path parameters with a structured 400.
#[derive(Debug, FromRequest, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The caller's upload session named by the route's `{id}`. An id that is not a UUID, an
/// unknown session and someone else's session are all the same 404.
#[derive(Debug)]
pub struct OwnedUpload {
    /// The caller.
    pub user: AuthUser,
    /// Their session.
    pub session: UploadSession,
}

impl FromRequestParts<AppState> for OwnedUpload {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state).await?;
        let id = params.iter().find_map(|(name, value)| (name == "id").then_some(value)).unwrap_or_default();
        let session = state.ingest.session_for(&user, super::path_id(id, "upload")?).await?;
        Ok(OwnedUpload { user, session })
    }
}
