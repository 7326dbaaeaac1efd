//! The video asset: the entity that ingest creates, the pipeline fills and delivery serves.

use super::{Generation, UploadId, UserId, VideoId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Processing state of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VideoStatus {
    /// Accepted; the pipeline has not published it yet.
    Processing,
    /// Packaged and playable.
    Ready,
    /// The pipeline gave up; see `failed_reason` and `retryable`.
    Failed,
}

impl VideoStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoStatus::Processing => "processing",
            VideoStatus::Ready => "ready",
            VideoStatus::Failed => "failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "processing" => VideoStatus::Processing,
            "ready" => VideoStatus::Ready,
            "failed" => VideoStatus::Failed,
            _ => return None,
        })
    }
}

/// A row of `video_assets`.
#[derive(Debug, Clone)]
pub struct Video {
    /// Video id.
    pub id: VideoId,
    /// Owner.
    pub creator_id: UserId,
    /// The upload session it came from.
    pub upload_id: UploadId,
    /// Processing state.
    pub status: VideoStatus,
    /// Key of the source object in the origin store.
    pub origin_object_key: String,
    /// Pipeline generation; a reprocess starts a new one.
    pub generation: Generation,
    /// Why processing failed.
    pub failed_reason: Option<String>,
    /// Whether a reprocess may succeed.
    pub retryable: Option<bool>,
    /// When the video row was created (upload completion).
    pub created_at: DateTime<Utc>,
    /// When the current generation started processing.
    pub processing_since: Option<DateTime<Utc>>,
}
