//! What the playback and feed APIs answer about a video.

use crate::model::{FailureReason, VideoId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::start::ObjectKind;
use crate::model::CacheTier;

/// A video as a viewer sees it; `status` tells which fields are present.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum VideoView {
    /// Playable.
    Ready(ReadyView),
    /// Still in the pipeline: a placeholder with polling hints.
    Processing(ProcessingView),
    /// The pipeline gave up.
    Failed(FailedView),
}

impl VideoView {
    /// The video's id.
    pub fn video_id(&self) -> VideoId {
        match self {
            VideoView::Ready(v) => v.video_id,
            VideoView::Processing(v) => v.video_id,
            VideoView::Failed(v) => v.video_id,
        }
    }
}

/// A ready video.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadyView {
    /// Video id.
    pub video_id: VideoId,
    /// Owner.
    pub creator_id: String,
    /// Upload completion.
    pub created_at: DateTime<Utc>,
    /// Publication.
    pub published_at: Option<DateTime<Utc>>,
    /// Duration.
    pub duration_ms: Option<i64>,
    /// Display width.
    pub width: Option<i64>,
    /// Display height.
    pub height: Option<i64>,
    /// The multivariant playlist, already capped for this viewer.
    pub playback_manifest_url: String,
    /// Poster image.
    pub thumbnail_url: Option<String>,
    /// The renditions this viewer may play, lowest first.
    pub renditions: Vec<RenditionView>,
    /// Whether the full ladder is published. Until then the master lists only the start rungs;
    /// afterwards `playback_manifest_url` is a new, versioned master listing every rung.
    pub ladder_complete: bool,
    /// Cache and prefetch hints.
    pub delivery: DeliveryHints,
}

/// A rendition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RenditionView {
    /// Ladder name, e.g. `540p`.
    pub profile: String,
    /// Pixel width.
    pub width: i64,
    /// Pixel height.
    pub height: i64,
    /// Measured peak bitrate.
    pub bitrate_kbps: i64,
    /// RFC 6381 codecs.
    pub codecs: String,
}

/// Delivery hints of a ready video.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryHints {
    /// Where caches should keep it.
    pub cache_tier_hint: CacheTier,
    /// Higher is warmed first.
    pub prefetch_priority: i64,
    /// The viewer's ceiling (short side).
    pub max_short_side: u32,
}

/// A processing video (a placeholder cell).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProcessingView {
    /// Video id.
    pub video_id: VideoId,
    /// Owner.
    pub creator_id: String,
    /// Upload completion.
    pub created_at: DateTime<Utc>,
    /// Current stage (`probe`, `transcode`, `publish_ready`).
    pub stage: Option<String>,
    /// Time in the pipeline so far.
    pub elapsed_ms: i64,
    /// When to ask again.
    pub poll_after_ms: u64,
    /// Poster, once the first segment is out.
    pub thumbnail_url: Option<String>,
    /// Whether the first start-rung segment is stored: the creator can already play it.
    pub playable: bool,
    /// The preview master (start rungs, growing `EVENT` playlists), once playable. Only the
    /// creator and admins ever see a processing video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playback_manifest_url: Option<String>,
}

/// A failed video.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailedView {
    /// Video id.
    pub video_id: VideoId,
    /// Owner.
    pub creator_id: String,
    /// Upload completion.
    pub created_at: DateTime<Utc>,
    /// Why, from a fixed vocabulary. The raw cause is only in the admins' view (`last_error`).
    pub failed_reason: Option<FailureReason>,
    /// A short sentence explaining `failed_reason` to the creator.
    pub failed_message: Option<&'static str>,
    /// Whether a reprocess may help.
    pub retryable: Option<bool>,
}

/// What a client should warm for an upcoming video (seed §3.5, "preload first segment only for
/// next video"): every object the start rung needs for its first frame, nothing more.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PrefetchHint {
    /// Video id.
    pub video_id: VideoId,
    /// The capped master (also the first entry of `objects`).
    pub manifest_url: String,
    /// The start rendition's init segment (also in `objects`).
    pub init_url: String,
    /// The start rendition's first media segment (also in `objects`).
    pub first_segment_url: String,
    /// In fetch order: the master, then per start rendition (video, then its audio rendition
    /// when audio is separate) the media playlist, init segment and first media segment.
    pub objects: Vec<PrefetchObject>,
    /// The sum of `objects[].bytes`.
    pub prefetch_bytes_total: u64,
}

/// One object to warm.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PrefetchObject {
    /// What it is to the player.
    pub kind: ObjectKind,
    /// Where to fetch it.
    pub url: String,
    /// Its size as stored (a gzip-encoded playlist arrives smaller).
    pub bytes: u64,
    /// Whether it belongs to a separate audio rendition.
    pub audio: bool,
}

/// A playlist's text handed out inline, so the player needs no request for it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InlinePlaylist {
    /// The video it belongs to.
    pub video_id: VideoId,
    /// The URL the text is served at; a player answers requests for it from `text`.
    pub url: String,
    /// The playlist, byte for byte as the origin serves it.
    pub text: String,
}

/// A feed page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedPage {
    /// Newest first.
    pub items: Vec<VideoView>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Option<String>,
    /// Upcoming videos a client may prefetch.
    pub prefetch_cap: u32,
    /// At most `prefetch_cap` hints, for the ready items following the first one.
    pub prefetch: Vec<PrefetchHint>,
    /// With `inline_playlists=true`: the master and start-rung media playlists of the first
    /// ready item, so its cold start needs only the init and first segment requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inline_playlists: Vec<InlinePlaylist>,
}
