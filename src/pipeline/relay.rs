//! The outbox relay: turns `video_upload_completed` events into the first job of a video.
//!
//! Delivery is at least once: an event is marked relayed in the same transaction that enqueues
//! its job, and a duplicate (or a second relay racing this one) hits the unique
//! (video, generation, stage) key and enqueues nothing. An event the relay can never use (a
//! malformed row, a video that does not exist) is dead-lettered: marked relayed with its
//! `dead_reason`, so it neither blocks the events behind it nor is retried forever. Any other
//! failure of one event is logged and retried on the next pass, after the rest of the batch.

use chrono::{DateTime, Utc};

use super::{Pipeline, PipelineError};
use crate::db::RawEvent;
use crate::model::score;
use crate::model::{EventType, Generation, NewJob, Stage, VideoId};

/// Events relayed per pass.
const BATCH: i64 = 50;

impl Pipeline {
    /// Relays pending upload events; returns how many were handled.
    pub async fn relay(&self, now: DateTime<Utc>) -> Result<usize, PipelineError> {
        let events = self.db.pending_events(EventType::UploadCompleted, BATCH).await?;
        for event in &events {
            let Some(video_id) = self.usable_video(event).await? else {
                continue;
            };
            if let Err(err) = self.relay_one(event, video_id, now).await {
                tracing::warn!(event_id = %event.id, error = %err, "event not relayed; retrying next pass");
            }
        }
        Ok(events.len())
    }

    /// The video an event names, or `None` after dead-lettering an event that names none.
    async fn usable_video(&self, event: &RawEvent) -> Result<Option<VideoId>, PipelineError> {
        let reason = match event.parse() {
            Err(reason) => reason,
            Ok(parsed) => match parsed.aggregate_id.parse::<VideoId>() {
                Err(_) => format!("aggregate {:?} is not a video id", parsed.aggregate_id),
                Ok(video_id) if self.db.get_video(video_id).await?.is_some() => return Ok(Some(video_id)),
                Ok(video_id) => format!("video {video_id} does not exist"),
            },
        };
        tracing::warn!(event_id = %event.id, reason, "outbox event dead-lettered");
        self.db.dead_letter_event(&event.id, &reason, Utc::now()).await?;
        Ok(None)
    }

    async fn relay_one(&self, event: &RawEvent, video_id: VideoId, now: DateTime<Utc>) -> Result<(), PipelineError> {
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
        self.db.relay_event(&event.id, &job, now).await?;
        tracing::info!(%video_id, priority = job.priority, "upload relayed into the pipeline");
        Ok(())
    }
}
