//! The outbox relay: turns `video_upload_completed` events into the first job of a video.
//!
//! Delivery is at least once: an event is marked relayed in the same transaction that enqueues
//! its job, and a duplicate (or a second relay racing this one) hits the unique
//! (video, generation, stage) key and enqueues nothing.

use chrono::{DateTime, Utc};

use super::{Pipeline, PipelineError};
use crate::model::score;
use crate::model::{EventType, Generation, NewJob, Stage};

/// Events relayed per pass.
const BATCH: i64 = 50;

impl Pipeline {
    /// Relays pending upload events; returns how many were handled.
    pub async fn relay(&self, now: DateTime<Utc>) -> Result<usize, PipelineError> {
        let events = self.db.pending_events(EventType::UploadCompleted, BATCH).await?;
        for event in &events {
            let Ok(video_id) = event.aggregate_id.parse() else {
                tracing::warn!(event_id = %event.id, aggregate = %event.aggregate_id, "event names no video; skipped");
                continue;
            };
            let inputs = self.db.score_inputs(video_id).await?;
            let value = score::value_score(&self.config.score, &inputs);
            self.db.set_value_score(video_id, value).await?;
            let job = NewJob {
                video_id,
                generation: Generation::FIRST,
                stage: Stage::Probe,
                max_attempts: self.config.max_attempts,
                priority: score::priority(value),
            };
            self.db.relay_event(event.id, &job, now).await?;
            tracing::info!(%video_id, priority = job.priority, "upload relayed into the pipeline");
        }
        Ok(events.len())
    }
}
