//! Who acts: user ids, roles and the authenticated caller.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A user id as carried in a token's `sub`: 1–64 characters of `[A-Za-z0-9_-]`, so it is safe in
/// object keys.
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

/// What a caller may do beyond being a creator/viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A creator or viewer.
    #[default]
    User,
    /// Operations staff: sees and acts on every video.
    Admin,
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
