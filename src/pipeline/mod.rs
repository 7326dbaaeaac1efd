//! The processing pipeline, in two phases:
//! 1. `probe → transcode (the start rungs, published segment by segment) → publish_ready`: the
//!    video is playable for its creator after the first segment and ready (in everyone's feed)
//!    once the start rungs are complete;
//! 2. `ladder`: the remaining rungs, published under a new versioned master.
//!
//! Work flows through `video_processing_jobs`, one row per stage of one generation of a video.
//! A worker that finishes a stage starts the next phase-1 stage of the same video at once
//! (no poll, no claim), and an idle worker wakes on new work (in-process signal, and
//! `LISTEN/NOTIFY` on PostgreSQL) with a timed poll as the fallback.
//! Any number of workers claim jobs with a lease they renew while working; a worker that dies
//! stops renewing and another takes the job over. Failures are either deterministic (the upload
//! is unacceptable: the video fails at once, not retryable) or transient (retried with
//! exponential backoff and jitter up to the stage's attempt limit, then failed as retryable).

mod cleanup;
pub mod deadline;
mod lease;
mod progressive;
mod relay;
mod source;
mod stages;
pub mod worker;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::config::PipelineConfig;
use crate::db::{Db, DbError, Failure};
use crate::media::{MediaError, Tools};
use crate::model::{EventType, FailureReason, Generation, Job, NewJob, OutboxEvent, Stage, VideoId, score};
use crate::storage::{Storage, StorageError};

pub use cleanup::RetentionReport;

/// Errors of the pipeline's own bookkeeping (not of a stage's work).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Metadata store failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// How a stage ended badly.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The upload is unacceptable; retrying cannot help, and neither can a reprocess.
    #[error("{detail}")]
    Rejected {
        /// Why, in the creators' vocabulary.
        reason: FailureReason,
        /// The media engine's own words (admins only).
        detail: String,
    },
    /// Running the same job again cannot help, though the upload is not at fault (invalid
    /// packaged output, a permanent object-store error): the video fails at once, retryable by
    /// a reprocess.
    #[error("{0:#}")]
    Permanent(#[source] anyhow::Error),
    /// Something around the work failed; a retry may succeed. Keeps the error and its causes.
    #[error("{0:#}")]
    Transient(#[source] anyhow::Error),
    /// The job is no longer this worker's (lease taken over, or the video was cancelled).
    #[error("lease lost")]
    LeaseLost,
}

impl StageError {
    /// Whether running the same job again may succeed (the one retry rule of the pipeline).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StageError::Transient(_))
    }

    /// A stage that panicked: this attempt failed, a retry may succeed.
    fn panicked(panic: Box<dyn std::any::Any + Send>) -> Self {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        StageError::Transient(anyhow::anyhow!("the stage panicked: {message}"))
    }
}

/// A job claimed by this worker, with the moment its lease was asked for (the lease runs from
/// there on this worker's clock).
type Claimed = (Job, Instant);

impl From<MediaError> for StageError {
    fn from(err: MediaError) -> Self {
        match err {
            MediaError::Rejected { reason } => {
                StageError::Rejected { reason: FailureReason::classify(&reason), detail: reason }
            }
            other if other.is_retryable() => StageError::Transient(other.into()),
            other => StageError::Permanent(other.into()),
        }
    }
}

impl From<StorageError> for StageError {
    fn from(err: StorageError) -> Self {
        let retryable = err.is_retryable();
        let err = anyhow::Error::new(err).context("object store");
        if retryable { StageError::Transient(err) } else { StageError::Permanent(err) }
    }
}

impl From<DbError> for StageError {
    fn from(err: DbError) -> Self {
        StageError::Transient(anyhow::Error::new(err).context("database"))
    }
}

impl From<std::io::Error> for StageError {
    fn from(err: std::io::Error) -> Self {
        StageError::Transient(anyhow::Error::new(err).context("local I/O"))
    }
}

/// What happened to a job this worker ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The stage finished (and the next one is queued, or the video is ready).
    Done,
    /// A transient failure; the job runs again later.
    Retrying,
    /// The video failed.
    Failed,
    /// Another worker or a cancellation took the job away.
    Lost,
}

/// A job this worker ran, and how it ended.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job.
    pub job_id: Uuid,
    /// Its video.
    pub video_id: VideoId,
    /// Its stage.
    pub stage: Stage,
    /// How it ended.
    pub outcome: JobOutcome,
}

/// The pipeline service: relay, deadline enforcement and job execution.
#[derive(Debug, Clone)]
pub struct Pipeline {
    db: Db,
    storage: Storage,
    config: Arc<PipelineConfig>,
    tools: Arc<Tools>,
    worker_id: String,
    sources: source::Sources,
    wake: Arc<Notify>,
}

impl Pipeline {
    /// Builds the service; `worker_id` names this process in leases.
    pub fn new(db: Db, storage: Storage, config: PipelineConfig, tools: Tools, worker_id: String) -> Self {
        Pipeline {
            db,
            storage,
            config: Arc::new(config),
            tools: Arc::new(tools),
            worker_id,
            sources: source::Sources::default(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes this process's idle workers: new work is waiting (an upload completed here).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// The ffmpeg and ffprobe it runs.
    pub fn tools(&self) -> &Tools {
        &self.tools
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    fn db(&self) -> &Db {
        &self.db
    }

    /// Completes at the next [`Pipeline::wake`].
    fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(60))
    }

    /// Claims and runs one job, then every stage of the same video it hands straight on to this
    /// worker. Empty when nothing is runnable.
    pub async fn run_next(&self) -> Result<Vec<JobReport>, PipelineError> {
        let (asked, now) = (Instant::now(), Utc::now());
        let claimed = self.db.claim_job(&self.worker_id, self.lease_until(now), now).await?;
        let mut next = claimed.map(|job| (job, asked));
        let mut reports = Vec::new();
        while let Some((job, asked)) = next {
            let (outcome, handed) = self.execute(&job, asked).await?;
            reports.push(JobReport { job_id: job.id, video_id: job.video_id, stage: job.stage, outcome });
            next = handed;
        }
        Ok(reports)
    }

    /// Relays events and runs jobs until none is runnable (tests and one-shot tools).
    pub async fn drain(&self) -> Result<Vec<JobReport>, PipelineError> {
        let mut reports = Vec::new();
        loop {
            self.relay(Utc::now()).await?;
            let ran = self.run_next().await?;
            if ran.is_empty() {
                self.record_queue_depth().await?;
                return Ok(reports);
            }
            reports.extend(ran);
        }
    }

    #[tracing::instrument(skip_all, fields(job_id = %job.id, video_id = %job.video_id, stage = job.stage.as_str(), attempt = job.attempt))]
    async fn execute(&self, job: &Job, asked: Instant) -> Result<(JobOutcome, Option<Claimed>), PipelineError> {
        if job.attempt > job.max_attempts {
            let detail = format!("{} gave up after {} attempts", job.stage.as_str(), job.max_attempts);
            return Ok((self.fail_job(job, FailureReason::InternalError, &detail, true).await?, None));
        }
        let started = Instant::now();
        let result = self.run_leased(job, asked).await;
        let elapsed_ms = started.elapsed().as_millis() as f64;
        let mut handed = None;
        let outcome = match result {
            Ok(next) => {
                handed = next;
                Ok(JobOutcome::Done)
            }
            Err(StageError::LeaseLost) => Ok(JobOutcome::Lost),
            Err(StageError::Rejected { reason, detail }) => self.fail_job(job, reason, &detail, false).await,
            Err(StageError::Permanent(error)) => {
                self.fail_job(job, FailureReason::InternalError, &format!("{error:#}"), true).await
            }
            Err(StageError::Transient(error)) => self.retry_or_fail(job, &format!("{error:#}")).await,
        }?;
        let labels = [("stage", job.stage.as_str()), ("outcome", outcome_label(&outcome))];
        metrics::histogram!("pipeline_stage_ms", &labels).record(elapsed_ms);
        tracing::info!(?outcome, elapsed_ms, "job finished");
        Ok((outcome, handed))
    }

    /// Runs the stage while a heartbeat renews the lease; losing the lease cancels the stage
    /// (dropping it kills any ffmpeg it runs). A panic in the stage fails this attempt like a
    /// transient error. The heartbeat stops with this future, however it ends.
    async fn run_leased(&self, job: &Job, asked: Instant) -> Result<Option<Claimed>, StageError> {
        let (lease, _heartbeat) = self.hold(job, asked);
        let stage = AssertUnwindSafe(self.run_stage(job, &lease)).catch_unwind();
        tokio::select! {
            result = stage => result.unwrap_or_else(|panic| Err(StageError::panicked(panic))),
            () = lease.lost() => Err(StageError::LeaseLost),
        }
    }

    async fn retry_or_fail(&self, job: &Job, error: &str) -> Result<JobOutcome, PipelineError> {
        if job.attempt >= job.max_attempts {
            let detail = format!("{} failed after {} attempts: {error}", job.stage.as_str(), job.attempt);
            return self.fail_job(job, FailureReason::InternalError, &detail, true).await;
        }
        let curve = Backoff { base: self.config.retry_backoff, max: self.config.retry_backoff_max };
        let delay = curve.delay(job.attempt);
        let now = Utc::now();
        let run_after = now + chrono::Duration::from_std(delay).unwrap_or_default();
        tracing::warn!(error, retry_in_ms = delay.as_millis() as u64, "transient failure; retrying");
        if self.db.retry_job(job, run_after, error, now).await? {
            Ok(JobOutcome::Retrying)
        } else {
            Ok(JobOutcome::Lost)
        }
    }

    async fn fail_job(
        &self,
        job: &Job,
        reason: FailureReason,
        detail: &str,
        retryable: bool,
    ) -> Result<JobOutcome, PipelineError> {
        if job.stage == Stage::Ladder {
            return self.fail_ladder(job, reason, detail).await;
        }
        let failure = Failure { reason, detail, retryable, by: Some(job) };
        if self.fail(job.video_id, job.generation, failure, Utc::now()).await? {
            return Ok(JobOutcome::Failed);
        }
        Ok(JobOutcome::Lost)
    }

    /// Phase 2 gave up: the video stays ready on its start rungs, the reason is recorded, and
    /// [`Pipeline::reprocess`] runs phase 2 again.
    async fn fail_ladder(&self, job: &Job, reason: FailureReason, detail: &str) -> Result<JobOutcome, PipelineError> {
        let now = Utc::now();
        if !self.db.give_up_job(job, detail, now).await? {
            return Ok(JobOutcome::Lost);
        }
        self.db.fail_ladder(job.video_id, job.generation, reason.as_str(), now).await?;
        metrics::counter!("pipeline_failures_total", "reason" => reason.as_str()).increment(1);
        tracing::warn!(video_id = %job.video_id, generation = %job.generation, reason = reason.as_str(), detail, "ladder failed; the video stays ready");
        Ok(JobOutcome::Failed)
    }

    /// Fails a processing generation and announces it; `false` if it was no longer processing
    /// (or the failing job's claim lost it).
    pub async fn fail(
        &self,
        video_id: VideoId,
        generation: Generation,
        failure: Failure<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, PipelineError> {
        let Failure { reason, detail, retryable, .. } = failure;
        let event = OutboxEvent {
            id: Uuid::now_v7(),
            event_type: EventType::VideoFailed,
            aggregate_id: video_id.to_string(),
            payload: json!({"video_id": video_id, "generation": generation, "failed_reason": reason.as_str(), "retryable": retryable}),
            created_at: now,
        };
        let failed = self.db.fail_video(video_id, generation, failure, &event, now).await?;
        if failed {
            metrics::counter!("pipeline_failures_total", "reason" => reason.as_str()).increment(1);
            tracing::warn!(%video_id, %generation, reason = reason.as_str(), detail, retryable, "video failed");
        }
        Ok(failed)
    }

    /// Starts a new generation of a ready or failed video; for a ready video whose phase 2
    /// failed, runs phase 2 again instead (the video stays ready). Returns the generation, or
    /// `None` when the video is processing (or does not exist).
    pub async fn reprocess(&self, video_id: VideoId, now: DateTime<Utc>) -> Result<Option<Generation>, PipelineError> {
        let event = OutboxEvent {
            id: Uuid::now_v7(),
            event_type: EventType::ReprocessRequested,
            aggregate_id: video_id.to_string(),
            payload: json!({"video_id": video_id, "phase": 2}),
            created_at: now,
        };
        if let Some(generation) = self.db.retry_ladder(video_id, self.config.max_attempts, &event, now).await? {
            tracing::info!(%video_id, %generation, "ladder restarted");
            return Ok(Some(generation));
        }
        let inputs = self.db.score_inputs(video_id).await?;
        let value = score::value_score(&self.config.score, &inputs);
        let first = NewJob {
            video_id,
            // Replaced by the generation the reprocess starts, in the same transaction.
            generation: Generation::FIRST,
            stage: Stage::Probe,
            max_attempts: self.config.max_attempts,
            priority: score::priority(value),
        };
        let event = OutboxEvent {
            id: Uuid::now_v7(),
            event_type: EventType::ReprocessRequested,
            aggregate_id: video_id.to_string(),
            payload: json!({"video_id": video_id}),
            created_at: now,
        };
        let generation = self.db.reprocess_video(video_id, &first, &event, now).await?;
        if let Some(generation) = generation {
            tracing::info!(%video_id, %generation, "reprocess started");
        }
        Ok(generation)
    }

    /// Publishes the queue depth gauge.
    pub async fn record_queue_depth(&self) -> Result<(), PipelineError> {
        let depth = self.db.queue_depth(Utc::now()).await?;
        metrics::gauge!("pipeline_queue_depth").set(depth as f64);
        Ok(())
    }
}

fn outcome_label(outcome: &JobOutcome) -> &'static str {
    match outcome {
        JobOutcome::Done => "done",
        JobOutcome::Retrying => "retrying",
        JobOutcome::Failed => "failed",
        JobOutcome::Lost => "lost",
    }
}
