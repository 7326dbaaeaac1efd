//! Playback signing keys, shared by every process through the database.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Db, DbError, with_pool};

/// One ES256 key pair as stored: the private half as base64 PKCS#8, the public half as the
/// base64 uncompressed P-256 point.
#[derive(Debug, Clone, FromRow)]
pub struct PlaybackKeyRow {
    /// Key id, carried in each token's `kid` header.
    pub kid: String,
    /// Base64 PKCS#8 DER of the private key.
    pub private_key: String,
    /// Base64 public point.
    pub public_key: String,
    /// When the key was added; the newest key signs.
    pub created_at: DateTime<Utc>,
}

impl Db {
    /// Every playback key, newest first.
    pub async fn playback_keys(&self) -> Result<Vec<PlaybackKeyRow>, DbError> {
        let sql =
            "SELECT kid, private_key, public_key, created_at FROM playback_keys ORDER BY created_at DESC, kid DESC";
        Ok(with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?))
    }

    /// Adds a key.
    pub async fn insert_playback_key(&self, key: &PlaybackKeyRow) -> Result<(), DbError> {
        let sql = "INSERT INTO playback_keys (kid, private_key, public_key, created_at) VALUES ($1, $2, $3, $4)";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(&key.kid).bind(&key.private_key).bind(&key.public_key).bind(key.created_at)
            .execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Removes a key unless it is the last one; `false` when nothing was removed.
    pub async fn remove_playback_key(&self, kid: &str) -> Result<bool, DbError> {
        let sql = "DELETE FROM playback_keys WHERE kid = $1 AND (SELECT COUNT(*) FROM playback_keys) > 1";
        let removed = with_pool!(self, pool => sqlx::query(sql).bind(kid).execute(pool).await?.rows_affected());
        Ok(removed == 1)
    }
}
