//! Per-user quota checks. They run inside the transaction that admits the request, after a
//! per-user lock (an advisory lock on PostgreSQL; SQLite's single writer), so any number of
//! `serve` processes sharing the database agree on the counts.

use chrono::{DateTime, Utc};

use super::Db;
use crate::config::QuotasConfig;
use crate::model::{Quota, QuotaExceeded};

/// Statement that serializes the quota checks of the user bound as `$1` until the transaction
/// ends. On SQLite a write statement (one that matches no row) takes the database's write lock.
pub(super) fn lock_user(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "UPDATE upload_sessions SET updated_at = updated_at WHERE creator_id = $1 AND 1 = 0",
        Db::Postgres(_) => "SELECT pg_advisory_xact_lock(hashtextextended('reel.quota:' || $1, 0))",
    }
}

/// A session is open (it holds a reservation) until it is completed, aborted or expired.
macro_rules! open_sessions_of_user {
    () => {
        "creator_id = $1 AND status NOT IN ('completed', 'aborted', 'expired') AND expires_at > $2"
    };
}

/// `(open sessions, bytes they reserve)` of user `$1` at time `$2`.
pub(super) const OPEN_UPLOADS: &str = concat!(
    "SELECT COUNT(*), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM upload_sessions WHERE ",
    open_sessions_of_user!()
);

/// The earliest expiry among the open sessions of user `$1` at time `$2`.
pub(super) const EARLIEST_EXPIRY: &str =
    concat!("SELECT expires_at FROM upload_sessions WHERE ", open_sessions_of_user!(), " ORDER BY expires_at LIMIT 1");

/// `(uploads completed since $2, videos processing)` of user `$1`.
pub(super) const COMPLETION_USAGE: &str = "SELECT \
     (SELECT COUNT(*) FROM upload_sessions WHERE creator_id = $1 AND status = 'completed' AND completed_at > $2), \
     (SELECT COUNT(*) FROM video_assets WHERE creator_user_id = $1 AND status = 'processing')";

/// The oldest completion of user `$1` since `$2`.
pub(super) const OLDEST_COMPLETION: &str = "SELECT completed_at FROM upload_sessions \
     WHERE creator_id = $1 AND status = 'completed' AND completed_at > $2 ORDER BY completed_at LIMIT 1";

/// The window of [`Quota::CompletedPerHour`].
pub(super) const HOUR: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// How long a user whose videos are all processing is asked to wait.
const PROCESSING_RETRY_SECS: u64 = 30;

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// Which quota a new session of `size` bytes would break, given the user's open sessions.
pub(super) fn refuse_upload(limits: &QuotasConfig, open: i64, reserved: i64, size: u64) -> Option<QuotaExceeded> {
    let (open, reserved) = (count(open), count(reserved));
    if open >= limits.open_uploads {
        return Some(exceeded(Quota::OpenUploads, limits.open_uploads, open, None));
    }
    (reserved.saturating_add(size) > limits.reserved_bytes)
        .then(|| exceeded(Quota::ReservedBytes, limits.reserved_bytes, reserved, None))
}

/// Which quota completing one more upload breaks. `completed` already counts this one;
/// `processing` does not count its video yet.
pub(super) fn refuse_completion(limits: &QuotasConfig, completed: i64, processing: i64) -> Option<QuotaExceeded> {
    let (completed, processing) = (count(completed), count(processing));
    if completed > limits.completed_per_hour {
        return Some(exceeded(Quota::CompletedPerHour, limits.completed_per_hour, completed - 1, None));
    }
    (processing >= limits.processing_videos)
        .then(|| exceeded(Quota::ProcessingVideos, limits.processing_videos, processing, Some(PROCESSING_RETRY_SECS)))
}

/// Sets `Retry-After` to the moment `frees` (when a reservation or completion stops counting).
pub(super) fn retry_at(mut refusal: QuotaExceeded, frees: Option<DateTime<Utc>>, now: DateTime<Utc>) -> QuotaExceeded {
    if let Some(at) = frees {
        refusal.retry_after = Some(count((at - now).num_seconds()).max(1));
    }
    refusal
}

fn exceeded(quota: Quota, limit: u64, used: u64, retry_after: Option<u64>) -> QuotaExceeded {
    QuotaExceeded { quota, limit, used, retry_after }
}
