//! Jobs of the processing queue: one row per stage of one generation of a video.

use uuid::Uuid;

use super::{Generation, VideoId};

/// A pipeline stage. Each finishes by enqueueing the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// ffprobe the source, validate it, write the poster.
    Probe,
    /// Phase 1: encode the start rungs (and the audio), publishing each segment as it lands.
    Transcode,
    /// Flip the video to `ready` and announce it.
    PublishReady,
    /// Phase 2: encode the remaining rungs of a ready video and publish the full ladder under a
    /// versioned master.
    Ladder,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 4] = [Stage::Probe, Stage::Transcode, Stage::PublishReady, Stage::Ladder];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Probe => "probe",
            Stage::Transcode => "transcode",
            Stage::PublishReady => "publish_ready",
            Stage::Ladder => "ladder",
        }
    }

    /// The scheduling phase: 1 up to `ready` (the start rungs), 2 for the rest of the ladder.
    /// Every runnable phase-1 job is claimed before any phase-2 job.
    pub fn phase(self) -> u8 {
        match self {
            Stage::Probe | Stage::Transcode | Stage::PublishReady => 1,
            Stage::Ladder => 2,
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Stage::ALL.into_iter().find(|stage| stage.as_str() == s)
    }
}

/// Where a job stands in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for `run_after` and a free worker.
    Queued,
    /// Claimed by a worker that renews its lease.
    Running,
    /// Finished; the next stage (if any) was enqueued with it.
    Done,
    /// Stopped for good: its video failed (this job's attempts ran out, or another's did) or was
    /// reprocessed into a newer generation.
    Cancelled,
}

impl JobStatus {
    /// Every status.
    pub const ALL: [JobStatus; 4] = [JobStatus::Queued, JobStatus::Running, JobStatus::Done, JobStatus::Cancelled];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        JobStatus::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id.
    pub id: Uuid,
    /// The video it processes.
    pub video_id: VideoId,
    /// The video generation it belongs to.
    pub generation: Generation,
    /// Which stage.
    pub stage: Stage,
    /// This attempt's number (1 on the first run).
    pub attempt: u32,
    /// Attempts allowed before the video fails.
    pub max_attempts: u32,
    /// Queue priority (higher runs first).
    pub priority: i64,
    /// The token of the claim that returned this job: every heartbeat, stage write and finish
    /// names it, so nothing this claim does lands once another claim holds the job. Nil for a
    /// job read rather than claimed.
    pub lease: Uuid,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The video.
    pub video_id: VideoId,
    /// Its generation.
    pub generation: Generation,
    /// The stage.
    pub stage: Stage,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Queue priority.
    pub priority: i64,
}
