//! The processing queue (`video_processing_jobs`): claim with a lease, heartbeat, finish (or
//! hand the next stage straight to the same worker), retry. On PostgreSQL the claim skips rows
//! other workers hold (`FOR UPDATE SKIP LOCKED`), so any number of workers share the queue;
//! SQLite serialises writers, which is all the embedded single process needs.
//!
//! Claim order ("the start rung for everyone before the ladder for anyone"):
//! 1. phase: every runnable phase-1 job (`probe`, `transcode`, `publish_ready`) before any
//!    phase-2 job (`ladder`);
//! 2. the job's turn within its creator's runnable jobs of that phase (1 for each creator's most
//!    urgent job, 2 for the next, …), so a burst from one creator is served round-robin with
//!    everyone else's uploads instead of ahead of them;
//! 3. priority (the value score);
//! 4. the creator served least recently first (never served first), which breaks ties between
//!    creators in favour of the one who has waited;
//! 5. `run_after`, then age.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::rows::{corrupt, parse_id};
use super::{Db, DbError, with_pool};
use crate::model::{Generation, Job, JobStatus, NewJob, Stage, VideoId};

#[derive(FromRow)]
struct JobRow {
    id: String,
    video_id: String,
    generation: i64,
    stage: String,
    attempt: i64,
    max_attempts: i64,
    priority: i64,
    lease_token: Option<String>,
}

impl TryFrom<JobRow> for Job {
    type Error = DbError;

    fn try_from(row: JobRow) -> Result<Self, DbError> {
        Ok(Job {
            id: parse_id(&row.id)?,
            video_id: parse_id(&row.video_id)?,
            generation: Generation::new(row.generation),
            stage: Stage::parse(&row.stage).ok_or_else(|| corrupt("stage", &row.stage))?,
            attempt: u32::try_from(row.attempt).unwrap_or(u32::MAX),
            max_attempts: u32::try_from(row.max_attempts).unwrap_or(1),
            priority: row.priority,
            lease: row.lease_token.as_deref().map(parse_id).transpose()?.unwrap_or(Uuid::nil()),
        })
    }
}

#[derive(FromRow)]
struct JobWithStatus {
    #[sqlx(flatten)]
    job: JobRow,
    status: String,
}

const JOB_COLUMNS: &str = "id, video_id, generation, stage, attempt, max_attempts, priority, lease_token";

pub(super) const INSERT_JOB: &str = "INSERT INTO video_processing_jobs \
    (id, video_id, generation, stage, status, attempt, max_attempts, priority, run_after, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7, $7) \
    ON CONFLICT (video_id, generation, stage) DO NOTHING";

/// Binds a [`NewJob`] to [`INSERT_JOB`] on either engine.
macro_rules! bind_new_job {
    ($job:expr, $now:expr) => {
        sqlx::query($crate::db::jobs::INSERT_JOB)
            .bind(Uuid::now_v7().to_string())
            .bind($job.video_id.to_string())
            .bind($job.generation.get())
            .bind($job.stage.as_str())
            .bind(i64::from($job.max_attempts))
            .bind($job.priority)
            .bind($now)
    };
}
pub(super) use bind_new_job;

/// The PostgreSQL channel that announces new work (see migration 0004).
const WORK_CHANNEL: &str = "reel_work";

/// Runnable jobs with their phase, their turn within their creator's jobs of that phase, and
/// when that creator was last served.
const RUNNABLE: &str = "SELECT c.id, c.phase, c.last_served, \
        ROW_NUMBER() OVER (PARTITION BY c.phase, c.creator ORDER BY c.priority DESC, c.created_at, c.id) AS turn \
    FROM (SELECT q.id, q.priority, q.created_at, v.creator_user_id AS creator, \
                 CASE q.stage WHEN 'ladder' THEN 2 ELSE 1 END AS phase, \
                 (SELECT MAX(s.claimed_at) FROM video_processing_jobs s \
                  JOIN video_assets sv ON sv.video_id = s.video_id \
                  WHERE sv.creator_user_id = v.creator_user_id) AS last_served \
          FROM video_processing_jobs q JOIN video_assets v ON v.video_id = q.video_id \
          WHERE (q.status = 'queued' AND q.run_after <= $3) OR (q.status = 'running' AND q.lease_expires_at < $3)) c";

/// The claim: the next runnable job in the order of the module docs, or one whose worker stopped
/// renewing its lease.
fn claim_sql(skip_locked: bool) -> String {
    let lock = if skip_locked { "FOR UPDATE OF j SKIP LOCKED" } else { "" };
    format!(
        "UPDATE video_processing_jobs \
         SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempt = attempt + 1, \
             claimed_at = $3, updated_at = $3, lease_token = $4 \
         WHERE id = (SELECT j.id FROM video_processing_jobs j JOIN ({RUNNABLE}) r ON r.id = j.id \
                     WHERE (j.status = 'queued' AND j.run_after <= $3) \
                        OR (j.status = 'running' AND j.lease_expires_at < $3) \
                     ORDER BY r.phase, r.turn, j.priority DESC, r.last_served ASC NULLS FIRST, j.run_after, j.created_at \
                     LIMIT 1 {lock}) \
         RETURNING {JOB_COLUMNS}"
    )
}

/// The next stage, inserted already claimed by the worker that finished the previous one.
const INSERT_HANDED_OFF: &str = "INSERT INTO video_processing_jobs \
    (id, video_id, generation, stage, status, attempt, max_attempts, priority, run_after, lease_owner, \
     lease_expires_at, claimed_at, created_at, updated_at, lease_token) \
    VALUES ($1, $2, $3, $4, 'running', 1, $5, $6, $7, $8, $9, $7, $7, $7, $10) \
    ON CONFLICT (video_id, generation, stage) DO NOTHING";

/// The condition that a job is still held by the claim with token `$2` at `$3`: running, same
/// token, lease not lapsed.
macro_rules! held {
    () => {
        "id = $1 AND lease_token = $2 AND status = 'running' AND lease_expires_at >= $3"
    };
}

/// Touches a job while its claim holds it (`$1` job, `$2` token, `$3` now). Run first in a
/// transaction, it also locks the job row on PostgreSQL until commit, so no other claim can
/// take the job between the check and the write it guards.
pub(super) const HOLD_LEASE: &str = concat!("UPDATE video_processing_jobs SET updated_at = $3 WHERE ", held!());

/// Runs [`HOLD_LEASE`] for `job`'s claim in transaction `tx`: `true` while the claim holds it.
macro_rules! hold_lease {
    ($tx:expr, $job:expr, $now:expr) => {
        sqlx::query($crate::db::jobs::HOLD_LEASE)
            .bind($job.id.to_string())
            .bind($job.lease.to_string())
            .bind($now)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
            == 1
    };
}
pub(super) use hold_lease;

pub(super) const FINISH_JOB: &str = concat!(
    "UPDATE video_processing_jobs SET status = 'done', lease_owner = NULL, lease_token = NULL, \
     lease_expires_at = NULL, error_message = NULL, updated_at = $3 WHERE ",
    held!()
);

impl Db {
    /// Enqueues a job unless the same stage of the same generation already exists.
    pub async fn enqueue_job(&self, job: &NewJob, now: DateTime<Utc>) -> Result<bool, DbError> {
        let inserted = with_pool!(self, pool => bind_new_job!(job, now).execute(pool).await?.rows_affected());
        Ok(inserted == 1)
    }

    /// Claims the next job for `owner` (a worker, named for operators) with a lease until
    /// `lease_until` under a fresh token ([`Job::lease`]).
    pub async fn claim_job(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, DbError> {
        let token = Uuid::now_v7().to_string();
        let row: Option<JobRow> = match self {
            Db::Sqlite(pool) => {
                sqlx::query_as(&claim_sql(false))
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(&token)
                    .fetch_optional(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as(&claim_sql(true))
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(&token)
                    .fetch_optional(pool)
                    .await?
            }
        };
        row.map(Job::try_from).transpose()
    }

    /// Extends the lease of `job`'s claim; `false` when the claim no longer holds the job (taken
    /// over, cancelled, or lapsed: a lapsed lease is never renewed, another worker may own it).
    pub async fn renew_lease(
        &self,
        job: &Job,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = concat!("UPDATE video_processing_jobs SET lease_expires_at = $4, updated_at = $3 WHERE ", held!());
        let renewed = with_pool!(self, pool => sqlx::query(sql)
            .bind(job.id.to_string()).bind(job.lease.to_string()).bind(now).bind(lease_until)
            .execute(pool).await?.rows_affected());
        Ok(renewed == 1)
    }

    /// Whether `job`'s claim still holds it (running, same token, lease not lapsed).
    pub async fn holds_lease(&self, job: &Job, now: DateTime<Utc>) -> Result<bool, DbError> {
        let sql = concat!("SELECT COUNT(*) FROM video_processing_jobs WHERE ", held!());
        let held: i64 = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(job.id.to_string()).bind(job.lease.to_string()).bind(now).fetch_one(pool).await?);
        Ok(held == 1)
    }

    /// Marks the job done and enqueues `next`, atomically. `false` when its claim lost the job.
    pub async fn finish_job(&self, job: &Job, next: Option<&NewJob>, now: DateTime<Utc>) -> Result<bool, DbError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let finished = sqlx::query(FINISH_JOB).bind(job.id.to_string()).bind(job.lease.to_string()).bind(now).execute(&mut *tx).await?;
            if finished.rows_affected() == 0 {
                return Ok(false);
            }
            if let Some(next) = next {
                bind_new_job!(next, now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Marks the job done and starts `next` for the same `owner` at once, under a new claim
    /// leased until `lease_until`: the hand-off between stages of one video waits for no poll.
    /// `Ok(None)` when `job`'s claim lost the job; `Ok(Some(None))` when `next` already existed
    /// (it stays as it was).
    pub async fn hand_off(
        &self,
        job: &Job,
        owner: &str,
        next: &NewJob,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Option<Job>>, DbError> {
        let (id, lease) = (Uuid::now_v7(), Uuid::now_v7());
        let inserted = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let finished = sqlx::query(FINISH_JOB).bind(job.id.to_string()).bind(job.lease.to_string()).bind(now).execute(&mut *tx).await?;
            if finished.rows_affected() == 0 {
                return Ok(None);
            }
            let inserted = sqlx::query(INSERT_HANDED_OFF)
                .bind(id.to_string()).bind(next.video_id.to_string()).bind(next.generation.get()).bind(next.stage.as_str())
                .bind(i64::from(next.max_attempts)).bind(next.priority).bind(now).bind(owner).bind(lease_until)
                .bind(lease.to_string())
                .execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            inserted
        });
        Ok(Some((inserted == 1).then_some(Job {
            id,
            video_id: next.video_id,
            generation: next.generation,
            stage: next.stage,
            attempt: 1,
            max_attempts: next.max_attempts,
            priority: next.priority,
            lease,
        })))
    }

    /// Stops a job its claim still holds for good with `reason` (a phase-2 job whose video
    /// stays ready). `false` when the claim lost the job.
    pub async fn give_up_job(&self, job: &Job, reason: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        let sql = concat!(
            "UPDATE video_processing_jobs SET status = 'cancelled', error_message = $4, lease_owner = NULL, \
             lease_token = NULL, lease_expires_at = NULL, updated_at = $3 WHERE ",
            held!()
        );
        let updated = with_pool!(self, pool => sqlx::query(sql)
            .bind(job.id.to_string()).bind(job.lease.to_string()).bind(now).bind(reason).execute(pool).await?.rows_affected());
        Ok(updated == 1)
    }

    /// Puts the job back in the queue to run again after `run_after`. `false` when its claim
    /// lost the job.
    pub async fn retry_job(
        &self,
        job: &Job,
        run_after: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = concat!(
            "UPDATE video_processing_jobs SET status = 'queued', run_after = $4, error_message = $5, \
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = $3 WHERE ",
            held!()
        );
        let updated = with_pool!(self, pool => sqlx::query(sql)
            .bind(job.id.to_string()).bind(job.lease.to_string()).bind(now).bind(run_after).bind(error)
            .execute(pool).await?.rows_affected());
        Ok(updated == 1)
    }

    /// Notifications of new work (`LISTEN reel_work`, sent by triggers when a job is queued or an
    /// upload completes). `None` on SQLite: the embedded single process wakes its workers in
    /// memory.
    pub async fn listen_for_work(&self) -> Result<Option<sqlx::postgres::PgListener>, DbError> {
        match self {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(WORK_CHANNEL).await?;
                Ok(Some(listener))
            }
        }
    }

    /// Jobs waiting to run (queued, or running on a lapsed lease).
    pub async fn queue_depth(&self, now: DateTime<Utc>) -> Result<i64, DbError> {
        let sql = "SELECT COUNT(*) FROM video_processing_jobs \
                   WHERE status = 'queued' OR (status = 'running' AND lease_expires_at < $1)";
        let depth: i64 = with_pool!(self, pool => sqlx::query_scalar(sql).bind(now).fetch_one(pool).await?);
        Ok(depth)
    }

    /// Every job of a video, oldest first (ops and tests).
    pub async fn jobs_of(&self, video_id: VideoId) -> Result<Vec<(Job, JobStatus)>, DbError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS}, status FROM video_processing_jobs WHERE video_id = $1 ORDER BY created_at, id"
        );
        let rows: Vec<JobWithStatus> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(video_id.to_string()).fetch_all(pool).await?);
        rows.into_iter()
            .map(|row| {
                let status = JobStatus::parse(&row.status).ok_or_else(|| corrupt("job status", &row.status))?;
                Ok((Job::try_from(row.job)?, status))
            })
            .collect()
    }
}
