//! The processing queue (`video_processing_jobs`): claim with a lease, heartbeat, finish,
//! retry. On PostgreSQL the claim skips rows other workers hold (`FOR UPDATE SKIP LOCKED`), so
//! any number of workers share the queue; SQLite serialises writers, which is all the embedded
//! single process needs.

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
        })
    }
}

#[derive(FromRow)]
struct JobWithStatus {
    #[sqlx(flatten)]
    job: JobRow,
    status: String,
}

const JOB_COLUMNS: &str = "id, video_id, generation, stage, attempt, max_attempts, priority";

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

/// The claim: the most urgent runnable job, or one whose worker stopped renewing its lease.
fn claim_sql(skip_locked: bool) -> String {
    let lock = if skip_locked { "FOR UPDATE SKIP LOCKED" } else { "" };
    format!(
        "UPDATE video_processing_jobs \
         SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempt = attempt + 1, updated_at = $3 \
         WHERE id = (SELECT id FROM video_processing_jobs \
                     WHERE (status = 'queued' AND run_after <= $3) OR (status = 'running' AND lease_expires_at < $3) \
                     ORDER BY priority DESC, run_after, created_at LIMIT 1 {lock}) \
         RETURNING {JOB_COLUMNS}"
    )
}

impl Db {
    /// Enqueues a job unless the same stage of the same generation already exists.
    pub async fn enqueue_job(&self, job: &NewJob, now: DateTime<Utc>) -> Result<bool, DbError> {
        let inserted = with_pool!(self, pool => bind_new_job!(job, now).execute(pool).await?.rows_affected());
        Ok(inserted == 1)
    }

    /// Claims the next job for `owner` with a lease until `lease_until`.
    pub async fn claim_job(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Job>, DbError> {
        let row: Option<JobRow> = match self {
            Db::Sqlite(pool) => {
                sqlx::query_as(&claim_sql(false)).bind(owner).bind(lease_until).bind(now).fetch_optional(pool).await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as(&claim_sql(true)).bind(owner).bind(lease_until).bind(now).fetch_optional(pool).await?
            }
        };
        row.map(Job::try_from).transpose()
    }

    /// Extends the lease; `false` when `owner` no longer holds the job (taken over or cancelled).
    pub async fn renew_lease(
        &self,
        job_id: Uuid,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE video_processing_jobs SET lease_expires_at = $3, updated_at = $4 \
                   WHERE id = $1 AND lease_owner = $2 AND status = 'running'";
        let renewed = with_pool!(self, pool => sqlx::query(sql)
            .bind(job_id.to_string()).bind(owner).bind(lease_until).bind(now)
            .execute(pool).await?.rows_affected());
        Ok(renewed == 1)
    }

    /// Marks the job done and enqueues `next`, atomically. `false` when `owner` lost the job.
    pub async fn finish_job(
        &self,
        job: &Job,
        owner: &str,
        next: Option<&NewJob>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let done = "UPDATE video_processing_jobs SET status = 'done', lease_owner = NULL, lease_expires_at = NULL, \
                    error_message = NULL, updated_at = $3 WHERE id = $1 AND lease_owner = $2 AND status = 'running'";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let finished = sqlx::query(done).bind(job.id.to_string()).bind(owner).bind(now).execute(&mut *tx).await?;
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

    /// Puts the job back in the queue to run again after `run_after`.
    pub async fn retry_job(
        &self,
        job: &Job,
        owner: &str,
        run_after: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE video_processing_jobs SET status = 'queued', run_after = $3, error_message = $4, \
                   lease_owner = NULL, lease_expires_at = NULL, updated_at = $5 \
                   WHERE id = $1 AND lease_owner = $2 AND status = 'running'";
        let updated = with_pool!(self, pool => sqlx::query(sql)
            .bind(job.id.to_string()).bind(owner).bind(run_after).bind(error).bind(now)
            .execute(pool).await?.rows_affected());
        Ok(updated == 1)
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
