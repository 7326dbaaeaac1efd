//! The event envelope: what the transactional outbox records beside each state change.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// What happened. Stored as [`EventType::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// An upload completed: a `processing` video exists and waits for the pipeline.
    UploadCompleted,
    /// A video was published as `ready`.
    VideoReady,
    /// A video's processing failed.
    VideoFailed,
    /// An operator asked for a video to be processed again.
    ReprocessRequested,
    /// The first start-rung segment of a processing video is stored: its creator can play it.
    VideoPlayable,
    /// A ready video's full ladder is published under a new master URL.
    LadderCompleted,
    /// The sweeper expired an upload session that was never completed.
    UploadExpired,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 7] = [
        EventType::UploadCompleted,
        EventType::VideoReady,
        EventType::VideoFailed,
        EventType::ReprocessRequested,
        EventType::VideoPlayable,
        EventType::LadderCompleted,
        EventType::UploadExpired,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UploadCompleted => "video_upload_completed",
            EventType::VideoReady => "video_ready",
            EventType::VideoFailed => "video_failed",
            EventType::ReprocessRequested => "video_reprocess_requested",
            EventType::VideoPlayable => "video_playable",
            EventType::LadderCompleted => "video_ladder_completed",
            EventType::UploadExpired => "upload_expired",
        }
    }

    /// The public name in event envelopes, webhook filters and NATS subjects.
    pub fn public_name(self) -> &'static str {
        match self {
            EventType::UploadCompleted => "upload.completed",
            EventType::VideoReady => "video.ready",
            EventType::VideoFailed => "video.failed",
            EventType::ReprocessRequested => "video.reprocess_requested",
            EventType::VideoPlayable => "video.playable",
            EventType::LadderCompleted => "video.ladder_completed",
            EventType::UploadExpired => "upload.expired",
        }
    }

    /// Parses the public name.
    pub fn parse_public(s: &str) -> Option<Self> {
        EventType::ALL.into_iter().find(|t| t.public_name() == s)
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An event to publish, written in the same transaction as the state it announces.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// Event id (UUIDv7, so ids sort by creation); stable across redeliveries.
    pub id: Uuid,
    /// What happened.
    pub event_type: EventType,
    /// The entity it is about (a video id).
    pub aggregate_id: String,
    /// JSON payload.
    pub payload: Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}
