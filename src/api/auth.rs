//! Bearer-token authentication: HS256 JWTs whose `sub` is the user id, and the extractor that
//! turns a request's `Authorization` header into the caller ([`AuthUser`]).

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::model::{AuthUser, Role, UserId};

/// The JWT claims reel reads and writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not valid before, seconds since the epoch (checked when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// `admin` for operations staff.
    #[serde(default)]
    pub role: Role,
    /// Delivery cohort (policy input), e.g. `low_conversion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
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
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_nbf = true;
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
            .and_then(bearer_token)
            .ok_or_else(|| ApiError::unauthorized("authorization must be 'Bearer <token>'"))?;
        Authenticator::from_ref(state).verify(token.trim())
    }
}

/// The token of a `Bearer <token>` header value; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"unit-test-secret-of-at-least-32-bytes";

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    fn claims(nbf: Option<u64>) -> Claims {
        Claims { sub: "ana".into(), exp: now() + 600, nbf, role: Role::User, cohort: None }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "  bEaReR abc"] {
            assert_eq!(bearer_token(header), Some("abc"), "{header}");
        }
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let auth = Authenticator::new(SECRET);
        let early = auth.issue(&claims(Some(now() + 3600))).expect("token");
        assert!(auth.verify(&early).is_err(), "nbf in the future");
        let valid = auth.issue(&claims(Some(now() - 10))).expect("token");
        assert_eq!(auth.verify(&valid).expect("valid").id.as_str(), "ana");
        let plain = auth.issue(&claims(None)).expect("token");
        assert!(auth.verify(&plain).is_ok(), "nbf is optional");
    }
}
