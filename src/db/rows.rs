//! Decoding stored text into domain types at the database boundary. Anything malformed is a
//! [`DbError`] naming what was wrong, never a silent default.

use std::str::FromStr;

use super::DbError;
use crate::model::UserId;

/// The error for a stored value that cannot be what its column says.
pub(super) fn corrupt(what: &str, value: &str) -> DbError {
    DbError::Query(sqlx::Error::Decode(format!("unexpected {what} {value:?} in the database").into()))
}

/// Parses a stored id (a UUID, a `VideoId`, an `UploadId`, …).
pub(super) fn parse_id<T: FromStr>(value: &str) -> Result<T, DbError> {
    value.parse().map_err(|_| corrupt("id", value))
}

/// Parses a stored user id.
pub(super) fn parse_user(value: &str) -> Result<UserId, DbError> {
    UserId::parse(value).map_err(|_| corrupt("user id", value))
}
