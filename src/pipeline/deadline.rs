//! The hard processing timeout (seed §5.4): a video still `processing` past the deadline fails
//! with `processing_timeout` (retryable), its jobs are cancelled, and a worker still running one
//! loses its lease at the next heartbeat and kills its ffmpeg. Phase 2 has the same deadline,
//! counted from when its `ladder` job was (re)queued: past it the job is cancelled the same way
//! and `processing_timeout` recorded as the ladder's failure, while the video stays ready on its
//! start rungs (a reprocess runs phase 2 again).

use chrono::{DateTime, Utc};

use super::{Pipeline, PipelineError};
use crate::db::Failure;
use crate::model::FailureReason;

/// The failure reason of a timed-out video (or phase 2).
pub const PROCESSING_TIMEOUT: &str = "processing_timeout";

impl Pipeline {
    /// Fails every video processing for longer than the configured timeout, and stops every
    /// phase 2 running for longer. Returns how many of either it stopped.
    pub async fn enforce_deadline(&self, now: DateTime<Utc>) -> Result<usize, PipelineError> {
        let timeout = chrono::Duration::from_std(self.config.processing_timeout).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = now.checked_sub_signed(timeout) else {
            return Ok(0);
        };
        let mut failed = 0;
        for (video_id, generation) in self.db.overdue_videos(cutoff, 100).await? {
            let failure = Failure { reason: FailureReason::ProcessingTimeout, detail: "", retryable: true, by: None };
            if self.fail(video_id, generation, failure, now).await? {
                failed += 1;
            }
        }
        for (video_id, generation) in self.db.overdue_ladders(cutoff, 100).await? {
            if self.db.stop_ladder(video_id, generation, PROCESSING_TIMEOUT, now).await? {
                tracing::warn!(%video_id, %generation, "phase 2 timed out; the video stays ready");
                metrics::counter!("pipeline_failures_total", "reason" => PROCESSING_TIMEOUT).increment(1);
                failed += 1;
            }
        }
        Ok(failed)
    }
}
