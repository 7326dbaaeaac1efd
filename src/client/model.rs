//! Typed requests and answers of the reel HTTP API calls the client makes (see `API-CONTRACT.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /v1/videos/uploads` body.
#[derive(Debug, Clone, Serialize)]
pub struct CreateUpload {
    /// The file's name (no path).
    pub filename: String,
    /// A `video/*` media type.
    pub content_type: String,
    /// Exact size of the file.
    pub size_bytes: u64,
}

/// Where an upload session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// No part received yet.
    Created,
    /// Some parts received.
    Uploading,
    /// Assembled; the video exists.
    Completed,
    /// Cancelled.
    Aborted,
    /// Not completed in time.
    Expired,
}

impl SessionStatus {
    /// Whether the session still takes parts, i.e. can be resumed.
    pub fn is_open(self) -> bool {
        matches!(self, SessionStatus::Created | SessionStatus::Uploading)
    }
}

/// An upload session (`POST /v1/videos/uploads`, `GET /v1/videos/uploads/{id}`).
#[derive(Debug, Clone, Deserialize)]
pub struct UploadSession {
    /// Session id.
    pub upload_id: String,
    /// Where the session stands.
    pub status: SessionStatus,
    /// Size of every part but the last.
    pub part_size: u64,
    /// Number of parts.
    pub part_count: u32,
    /// Total size.
    pub size_bytes: u64,
    /// The video, once completed.
    pub video_id: Option<String>,
    /// Parts the server holds.
    #[serde(default)]
    pub received_parts: Vec<ReceivedPart>,
    /// Where to send each part still missing.
    #[serde(default)]
    pub parts: Vec<PartTarget>,
}

/// A part the server holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReceivedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// Its size.
    pub size_bytes: u64,
    /// Storage ETag.
    pub etag: String,
    /// SHA-256 (hex) when known.
    pub sha256: Option<String>,
}

/// Where and how to send one part.
#[derive(Debug, Clone, Deserialize)]
pub struct PartTarget {
    /// 1-based part number.
    pub part_number: u32,
    /// Exact length of the part.
    pub size_bytes: u64,
    /// Destination URL: reel's own part URL or a presigned bucket URL.
    pub url: String,
    /// Extra headers to send.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The answer to a part PUT sent to reel.
#[derive(Debug, Clone, Deserialize)]
pub struct PartReceipt {
    /// Part number.
    pub part_number: u32,
    /// Storage ETag.
    pub etag: String,
}

/// One part registration in `POST /v1/videos/uploads/{id}/parts`.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterPart {
    /// Part number.
    pub part_number: u32,
    /// ETag the bucket answered.
    pub etag: String,
    /// SHA-256 (hex) of the part.
    pub sha256: String,
}

/// The answer to `POST /v1/videos/uploads/{id}/complete`.
#[derive(Debug, Clone, Deserialize)]
pub struct Completed {
    /// The new video.
    pub video_id: String,
}

/// A rendition of a ready video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// e.g. `540p`.
    pub profile: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bitrate.
    pub bitrate_kbps: u32,
    /// RFC 6381 codecs string.
    pub codecs: String,
}

/// A video as `GET /v1/videos/{id}` and the feed show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VideoView {
    /// Playable.
    Ready {
        /// Video id.
        video_id: String,
        /// Absolute HLS master URL.
        playback_manifest_url: String,
        /// Poster URL.
        thumbnail_url: Option<String>,
        /// Duration.
        duration_ms: Option<i64>,
        /// The ladder.
        #[serde(default)]
        renditions: Vec<Rendition>,
        /// Whether every rung is published (until then the master lists the start rungs).
        #[serde(default)]
        ladder_complete: bool,
    },
    /// In the pipeline.
    Processing {
        /// Video id.
        video_id: String,
        /// Current stage (`probe`, `transcode`, `publish_ready`) if known.
        stage: Option<String>,
        /// Time since completion.
        elapsed_ms: Option<i64>,
        /// When to ask again.
        poll_after_ms: Option<u64>,
        /// Whether the creator can already play it (the first start-rung segment is stored).
        #[serde(default)]
        playable: bool,
        /// The preview master, once playable.
        playback_manifest_url: Option<String>,
    },
    /// Processing failed.
    Failed {
        /// Video id.
        video_id: String,
        /// Why.
        failed_reason: Option<String>,
        /// Whether a reprocess may succeed, when known.
        retryable: Option<bool>,
    },
}

impl VideoView {
    /// The video's id.
    pub fn video_id(&self) -> &str {
        match self {
            VideoView::Ready { video_id, .. }
            | VideoView::Processing { video_id, .. }
            | VideoView::Failed { video_id, .. } => video_id,
        }
    }

    /// One plain line: id, status, then the manifest URL, the stage or the failure reason.
    pub fn summary(&self) -> String {
        match self {
            VideoView::Ready { video_id, playback_manifest_url, .. } => {
                format!("{video_id}\tready\t{playback_manifest_url}")
            }
            VideoView::Processing { video_id, stage, .. } => {
                format!("{video_id}\tprocessing\t{}", stage.as_deref().unwrap_or("queued"))
            }
            VideoView::Failed { video_id, failed_reason, .. } => {
                format!("{video_id}\tfailed\t{}", failed_reason.as_deref().unwrap_or("unknown"))
            }
        }
    }
}

/// A page of `GET /v1/feed/videos`.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedPage {
    /// Newest first.
    pub items: Vec<VideoView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn video_views_follow_the_contract() {
        let ready: VideoView = serde_json::from_value(json!({
            "video_id": "v", "creator_id": "c", "status": "ready", "created_at": "t", "published_at": "t",
            "duration_ms": 2000, "width": 720, "height": 1280, "thumbnail_url": null,
            "playback_manifest_url": "http://h/origin/packaged/v/hls/master.m3u8",
            "renditions": [{"profile": "720p", "width": 720, "height": 1280, "bitrate_kbps": 2800, "codecs": "avc1"}]
        }))
        .unwrap();
        assert_eq!(ready.summary(), "v\tready\thttp://h/origin/packaged/v/hls/master.m3u8");
        let processing: VideoView = serde_json::from_value(json!({
            "video_id": "v", "creator_id": "c", "status": "processing", "created_at": "t", "stage": null,
            "elapsed_ms": 5, "poll_after_ms": 1000, "thumbnail_url": null
        }))
        .unwrap();
        assert_eq!(processing.summary(), "v\tprocessing\tqueued");
        let failed: VideoView = serde_json::from_value(json!({
            "video_id": "v", "creator_id": "c", "status": "failed", "created_at": "t",
            "failed_reason": "audio only", "retryable": false
        }))
        .unwrap();
        assert_eq!(failed.video_id(), "v");
        assert_eq!(failed.summary(), "v\tfailed\taudio only");
    }
}
