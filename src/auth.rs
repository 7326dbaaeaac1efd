//! Bearer-token authentication: HS256 JWTs whose `sub` is the user id.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// A user id as carried in `sub`: 1–64 characters of `[A-Za-z0-9_-]`, so it is safe in object keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Parses a user id, refusing anything that could not be a path segment.
    pub fn parse(raw: &str) -> Result<Self, InvalidUserId> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(UserId(raw.to_owned())) } else { Err(InvalidUserId) }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The error of [`UserId::parse`].
#[derive(Debug, thiserror::Error)]
#[error("user ids are 1-64 characters of A-Z, a-z, 0-9, '-' and '_'")]
pub struct InvalidUserId;

/// What a token may do beyond being a creator/viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A creator or viewer.
    #[default]
    User,
    /// Operations staff: sees and acts on every video.
    Admin,
}

/// The JWT claims reel reads and writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// `admin` for operations staff.
    #[serde(default)]
    pub role: Role,
    /// Delivery cohort (policy input), e.g. `low_conversion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Who is calling.
    pub id: UserId,
    /// Their role.
    pub role: Role,
    /// Their delivery cohort, if any.
    pub cohort: Option<String>,
}

impl AuthUser {
    /// Whether the caller may see and act on everything.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Signs and verifies tokens with one shared HS256 secret.
#[derive(Clone)]
pub struct Authenticator(Arc<Keys>);

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authenticator(..)")
    }
}

impl Authenticator {
    /// Builds the signer/verifier from the shared secret.
    pub fn new(secret: &[u8]) -> Self {
        Authenticator(Arc::new(Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }))
    }

    /// Mints a token for `claims`.
    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.0.encoding)
    }

    /// Verifies a token and returns the caller it names.
    pub fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        let validation = Validation::new(Algorithm::HS256);
        let data = jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &validation)
            .map_err(|_| ApiError::unauthorized("invalid or expired token"))?;
        let id = UserId::parse(&data.claims.sub)
            .map_err(|_| ApiError::unauthorized("token subject is not a valid user id"))?;
        Ok(AuthUser { id, role: data.claims.role, cohort: data.claims.cohort })
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("authorization must be 'Bearer <token>'"))?;
        Authenticator::from_ref(state).verify(token.trim())
    }
}
