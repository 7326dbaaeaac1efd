//! Upload session and part types.

use super::{UploadId, UserId, VideoId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Lifecycle of an upload session.
///
/// `created -> uploading -> completed`, or `aborted` by the creator, or `expired` by the sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    /// No part received yet.
    Created,
    /// At least one part received.
    Uploading,
    /// Assembled; the video exists.
    Completed,
    /// Cancelled by the creator; staged data freed.
    Aborted,
    /// Passed `expires_at` before completion; staged data freed.
    Expired,
}

impl UploadStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::Created => "created",
            UploadStatus::Uploading => "uploading",
            UploadStatus::Completed => "completed",
            UploadStatus::Aborted => "aborted",
            UploadStatus::Expired => "expired",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => UploadStatus::Created,
            "uploading" => UploadStatus::Uploading,
            "completed" => UploadStatus::Completed,
            "aborted" => UploadStatus::Aborted,
            "expired" => UploadStatus::Expired,
            _ => return None,
        })
    }

    /// Whether parts may still be added.
    pub fn accepts_parts(self) -> bool {
        matches!(self, UploadStatus::Created | UploadStatus::Uploading)
    }
}

/// One upload session: the plan for a file and where its parts are staged.
#[derive(Debug, Clone)]
pub struct UploadSession {
    /// Session id.
    pub id: UploadId,
    /// Owner; nobody else may see the session.
    pub creator_id: UserId,
    /// Reserved at creation so object keys are stable across retries; exposed once completed.
    pub video_id: VideoId,
    /// Client-supplied name, for display only (never used in keys).
    pub filename: String,
    /// Declared MIME type.
    pub content_type: String,
    /// Declared total size.
    pub size_bytes: u64,
    /// Declared whole-file SHA-256 (lowercase hex), checked at completion.
    pub sha256: Option<String>,
    /// Size of every part but the last.
    pub part_size: u64,
    /// Number of parts.
    pub part_count: u32,
    /// Lifecycle state.
    pub status: UploadStatus,
    /// S3 multipart upload id when parts are staged in a bucket.
    pub s3_upload_id: Option<String>,
    /// Key of the assembled source object, once assembled.
    pub source_key: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// After this instant the sweeper expires the session.
    pub expires_at: DateTime<Utc>,
    /// When completion committed.
    pub completed_at: Option<DateTime<Utc>>,
}

impl UploadSession {
    /// Expected byte length of part `number` (1-based), or `None` when out of range.
    pub fn part_len(&self, number: u32) -> Option<u64> {
        if number == 0 || number > self.part_count {
            return None;
        }
        let before = u64::from(number - 1) * self.part_size;
        Some((self.size_bytes - before).min(self.part_size))
    }
}

/// A part the server holds (or has verified in the bucket).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredPart {
    /// 1-based part number.
    pub part_number: u32,
    /// Byte length.
    pub size_bytes: u64,
    /// Storage ETag (quoted, as S3 returns it).
    pub etag: String,
    /// SHA-256 of the part when known (lowercase hex).
    pub sha256: Option<String>,
}
