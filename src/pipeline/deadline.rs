//! The hard processing timeout (seed §5.4): a video still `processing` past the deadline fails
//! with `processing_timeout` (retryable), its jobs are cancelled, and a worker still running one
//! loses its lease at the next heartbeat and kills its ffmpeg.

use chrono::{DateTime, Utc};

use super::{Pipeline, PipelineError};

/// The failure reason of a timed-out video.
pub const PROCESSING_TIMEOUT: &str = "processing_timeout";

impl Pipeline {
    /// Fails every video processing for longer than the configured timeout.
    pub async fn enforce_deadline(&self, now: DateTime<Utc>) -> Result<usize, PipelineError> {
        let timeout = chrono::Duration::from_std(self.config.processing_timeout).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = now.checked_sub_signed(timeout) else {
            return Ok(0);
        };
        let mut failed = 0;
        for (video_id, generation) in self.db.overdue_videos(cutoff, 100).await? {
            if self.fail(video_id, generation, PROCESSING_TIMEOUT, true, now).await? {
                failed += 1;
            }
        }
        Ok(failed)
    }
}
