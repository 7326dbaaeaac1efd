//! Queries on `upload_sessions` and `upload_parts`, and the completion transaction.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::quotas;
use super::rows::{corrupt, parse_id, parse_user};
use super::{Db, DbError, NewVideo, with_pool};
use crate::config::QuotasConfig;
use crate::model::{OutboxEvent, StoredPart, UploadId, UploadSession, UploadStatus};

/// A session to insert.
#[derive(Debug)]
pub struct NewUploadSession<'a> {
    /// The session as planned.
    pub session: &'a UploadSession,
    /// The creator's quotas, checked in the inserting transaction.
    pub quotas: &'a QuotasConfig,
}

#[derive(FromRow)]
struct SessionRow {
    id: String,
    creator_id: String,
    video_id: String,
    filename: String,
    content_type: String,
    size_bytes: i64,
    sha256: Option<String>,
    part_size: i64,
    part_count: i64,
    status: String,
    s3_upload_id: Option<String>,
    source_key: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

const SESSION_COLUMNS: &str = "id, creator_id, video_id, filename, content_type, size_bytes, sha256, part_size, \
     part_count, status, s3_upload_id, source_key, created_at, expires_at, completed_at";

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

impl TryFrom<SessionRow> for UploadSession {
    type Error = DbError;

    fn try_from(row: SessionRow) -> Result<Self, DbError> {
        Ok(UploadSession {
            id: parse_id(&row.id)?,
            creator_id: parse_user(&row.creator_id)?,
            video_id: parse_id(&row.video_id)?,
            filename: row.filename,
            content_type: row.content_type,
            size_bytes: to_u64(row.size_bytes),
            sha256: row.sha256,
            part_size: to_u64(row.part_size),
            part_count: u32::try_from(row.part_count)
                .map_err(|_| corrupt("part count", &row.part_count.to_string()))?,
            status: UploadStatus::parse(&row.status).ok_or_else(|| corrupt("upload status", &row.status))?,
            s3_upload_id: row.s3_upload_id,
            source_key: row.source_key,
            created_at: row.created_at,
            expires_at: row.expires_at,
            completed_at: row.completed_at,
        })
    }
}

#[derive(FromRow)]
struct PartRow {
    part_number: i64,
    size_bytes: i64,
    etag: String,
    sha256: Option<String>,
}

impl From<PartRow> for StoredPart {
    fn from(row: PartRow) -> Self {
        StoredPart {
            part_number: u32::try_from(row.part_number).unwrap_or_default(),
            size_bytes: to_u64(row.size_bytes),
            etag: row.etag,
            sha256: row.sha256,
        }
    }
}

fn i64_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Db {
    /// Inserts a new session, unless the creator's open sessions already hold their quota of
    /// sessions or bytes ([`DbError::Quota`]).
    pub async fn insert_upload(&self, new: NewUploadSession<'_>) -> Result<(), DbError> {
        let s = new.session;
        let creator = s.creator_id.as_str();
        let lock = quotas::lock_user(self);
        let sql = "INSERT INTO upload_sessions (id, creator_id, video_id, filename, content_type, size_bytes, \
                   sha256, part_size, part_count, status, s3_upload_id, created_at, updated_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock).bind(creator).execute(&mut *tx).await?;
            let (open, reserved): (i64, i64) =
                sqlx::query_as(quotas::OPEN_UPLOADS).bind(creator).bind(s.created_at).fetch_one(&mut *tx).await?;
            if let Some(refusal) = quotas::refuse_upload(new.quotas, open, reserved, s.size_bytes) {
                let frees: Option<(DateTime<Utc>,)> = sqlx::query_as(quotas::EARLIEST_EXPIRY)
                    .bind(creator)
                    .bind(s.created_at)
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(DbError::Quota(quotas::retry_at(refusal, frees.map(|(at,)| at), s.created_at)));
            }
            sqlx::query(sql)
                .bind(s.id.to_string())
                .bind(creator)
                .bind(s.video_id.to_string())
                .bind(&s.filename)
                .bind(&s.content_type)
                .bind(i64_of(s.size_bytes))
                .bind(&s.sha256)
                .bind(i64_of(s.part_size))
                .bind(i64::from(s.part_count))
                .bind(s.status.as_str())
                .bind(&s.s3_upload_id)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Loads a session.
    pub async fn get_upload(&self, id: UploadId) -> Result<Option<UploadSession>, DbError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM upload_sessions WHERE id = $1");
        let row: Option<SessionRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(pool).await?);
        row.map(UploadSession::try_from).transpose()
    }

    /// The parts held for a session, by part number.
    pub async fn list_parts(&self, upload_id: UploadId) -> Result<Vec<StoredPart>, DbError> {
        let sql =
            "SELECT part_number, size_bytes, etag, sha256 FROM upload_parts WHERE upload_id = $1 ORDER BY part_number";
        let rows: Vec<PartRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(upload_id.to_string()).fetch_all(pool).await?);
        Ok(rows.into_iter().map(StoredPart::from).collect())
    }

    /// Records (or replaces) parts and moves an open session to `uploading`. Returns `false` when
    /// the session is no longer open, in which case nothing is recorded.
    pub async fn record_parts(
        &self,
        upload_id: UploadId,
        parts: &[StoredPart],
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let open = "UPDATE upload_sessions SET status = 'uploading', updated_at = $2 \
                    WHERE id = $1 AND status IN ('created', 'uploading')";
        let upsert = "INSERT INTO upload_parts (upload_id, part_number, size_bytes, etag, sha256, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6) \
                      ON CONFLICT (upload_id, part_number) DO UPDATE SET size_bytes = excluded.size_bytes, \
                      etag = excluded.etag, sha256 = excluded.sha256, created_at = excluded.created_at";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(open).bind(upload_id.to_string()).bind(now).execute(&mut *tx).await?;
            if updated.rows_affected() == 0 {
                return Ok(false);
            }
            for part in parts {
                sqlx::query(upsert)
                    .bind(upload_id.to_string())
                    .bind(i64::from(part.part_number))
                    .bind(i64_of(part.size_bytes))
                    .bind(&part.etag)
                    .bind(&part.sha256)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Remembers where the assembled source landed, so a retried completion skips assembly.
    pub async fn set_source_key(&self, upload_id: UploadId, key: &str) -> Result<(), DbError> {
        let sql = "UPDATE upload_sessions SET source_key = $2 WHERE id = $1";
        with_pool!(self, pool => sqlx::query(sql).bind(upload_id.to_string()).bind(key).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// The completion transaction: the session becomes `completed`, the `processing` video row
    /// and the outbox event are inserted, all or nothing. Returns `false` (and changes nothing)
    /// when the session was not open any more, and [`DbError::Quota`] (changing nothing) when
    /// the creator has completed too many uploads this hour or has too many videos processing.
    pub async fn complete_upload(
        &self,
        upload_id: UploadId,
        video: &NewVideo,
        event: &OutboxEvent,
        limits: &QuotasConfig,
    ) -> Result<bool, DbError> {
        let close = "UPDATE upload_sessions SET status = 'completed', completed_at = $2, updated_at = $2 \
                     WHERE id = $1 AND status IN ('created', 'uploading')";
        let lock = quotas::lock_user(self);
        let (creator, now) = (video.creator_id.as_str(), video.created_at);
        let since = now - quotas::HOUR;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock).bind(creator).execute(&mut *tx).await?;
            let closed = sqlx::query(close).bind(upload_id.to_string()).bind(now).execute(&mut *tx).await?;
            if closed.rows_affected() == 0 {
                return Ok(false);
            }
            let (completed, processing): (i64, i64) =
                sqlx::query_as(quotas::COMPLETION_USAGE).bind(creator).bind(since).fetch_one(&mut *tx).await?;
            if let Some(refusal) = quotas::refuse_completion(limits, completed, processing) {
                let frees: Option<(DateTime<Utc>,)> = match refusal.quota {
                    crate::model::Quota::CompletedPerHour => {
                        sqlx::query_as(quotas::OLDEST_COMPLETION).bind(creator).bind(since).fetch_optional(&mut *tx).await?
                    }
                    _ => None,
                };
                return Err(DbError::Quota(quotas::retry_at(refusal, frees.map(|(at,)| at + quotas::HOUR), now)));
            }
            sqlx::query(super::videos::INSERT_VIDEO)
                .bind(video.id.to_string())
                .bind(video.creator_id.as_str())
                .bind(video.upload_id.to_string())
                .bind(&video.origin_object_key)
                .bind(video.created_at)
                .execute(&mut *tx)
                .await?;
            super::outbox::bind_event!(event).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Marks an open, unexpired session as being completed until `until`: the sweeper and abort
    /// leave it alone meanwhile. `false` when it is not open (or has expired).
    pub async fn begin_completion(
        &self,
        upload_id: UploadId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE upload_sessions SET completing_until = $2, updated_at = $3 \
                   WHERE id = $1 AND status IN ('created', 'uploading') AND expires_at > $3";
        let marked = with_pool!(self, pool => sqlx::query(sql)
            .bind(upload_id.to_string()).bind(until).bind(now).execute(pool).await?.rows_affected());
        Ok(marked == 1)
    }

    /// Ends a completion that did not complete (the session is open again for abort and expiry).
    pub async fn end_completion(&self, upload_id: UploadId) -> Result<(), DbError> {
        let sql = "UPDATE upload_sessions SET completing_until = NULL WHERE id = $1";
        with_pool!(self, pool => sqlx::query(sql).bind(upload_id.to_string()).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Closes an open session that no completion holds as `aborted` or `expired`. Returns
    /// `false` if it was not open, or is being completed.
    pub async fn close_upload(
        &self,
        upload_id: UploadId,
        status: UploadStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE upload_sessions SET status = $2, updated_at = $3 \
                   WHERE id = $1 AND status IN ('created', 'uploading') \
                   AND (completing_until IS NULL OR completing_until < $3)";
        let done = with_pool!(self, pool => sqlx::query(sql)
            .bind(upload_id.to_string())
            .bind(status.as_str())
            .bind(now)
            .execute(pool)
            .await?.rows_affected());
        Ok(done == 1)
    }

    /// Closes an open session as `expired` and records `event`, together. Returns `false` (and
    /// records nothing) if it was not open, or is being completed.
    pub async fn expire_upload(
        &self,
        upload_id: UploadId,
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE upload_sessions SET status = 'expired', updated_at = $2 \
                   WHERE id = $1 AND status IN ('created', 'uploading') \
                   AND (completing_until IS NULL OR completing_until < $2)";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let closed = sqlx::query(sql).bind(upload_id.to_string()).bind(now).execute(&mut *tx).await?;
            if closed.rows_affected() == 0 {
                return Ok(false);
            }
            super::outbox::bind_event!(event).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Open sessions whose `expires_at` has passed, except those being completed.
    pub async fn expired_uploads(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<UploadSession>, DbError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM upload_sessions \
             WHERE status IN ('created', 'uploading') AND expires_at < $1 \
             AND (completing_until IS NULL OR completing_until < $1) ORDER BY expires_at LIMIT $2"
        );
        self.sessions(&sql, now, limit).await
    }

    /// Closed sessions whose staged data has not been freed yet.
    pub async fn uncleared_uploads(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<UploadSession>, DbError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM upload_sessions \
             WHERE status IN ('completed', 'aborted', 'expired') AND staging_cleared_at IS NULL \
             AND updated_at <= $1 ORDER BY updated_at LIMIT $2"
        );
        self.sessions(&sql, now, limit).await
    }

    async fn sessions(&self, sql: &str, now: DateTime<Utc>, limit: i64) -> Result<Vec<UploadSession>, DbError> {
        let rows: Vec<SessionRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(now).bind(limit).fetch_all(pool).await?);
        rows.into_iter().map(UploadSession::try_from).collect()
    }

    /// Marks a closed session's staged data as freed.
    pub async fn mark_staging_cleared(&self, upload_id: UploadId, now: DateTime<Utc>) -> Result<(), DbError> {
        let sql = "UPDATE upload_sessions SET staging_cleared_at = $2 WHERE id = $1";
        with_pool!(self, pool => sqlx::query(sql).bind(upload_id.to_string()).bind(now).execute(pool).await?.rows_affected());
        Ok(())
    }
}
