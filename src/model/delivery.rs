//! Per-video delivery policy (seed §4.4): what operators may set on one video.

use serde::{Deserialize, Serialize};

/// Cache tier hint for CDNs and the origin's hot tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheTier {
    /// Pre-cache at the edge.
    Hot,
    /// Keep regionally.
    Warm,
    /// Origin fallback is fine.
    Cold,
}

impl CacheTier {
    /// The stored and header spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheTier::Hot => "hot",
            CacheTier::Warm => "warm",
            CacheTier::Cold => "cold",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [CacheTier::Hot, CacheTier::Warm, CacheTier::Cold].into_iter().find(|tier| tier.as_str() == s)
    }
}

/// Who may play a video from the origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlaybackAccess {
    /// Anyone with the URL, once the video is published.
    #[default]
    Public,
    /// Only through a URL carrying a short-lived signed token.
    Signed,
}

impl PlaybackAccess {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaybackAccess::Public => "public",
            PlaybackAccess::Signed => "signed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [PlaybackAccess::Public, PlaybackAccess::Signed].into_iter().find(|access| access.as_str() == s)
    }
}

/// One video's delivery policy; every field is an override of the global behaviour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VideoPolicy {
    /// Highest rendition bitrate served, kb/s.
    #[schema(minimum = 1)]
    pub max_bitrate_kbps: Option<i64>,
    /// Prefetch priority override (higher is warmed first).
    pub prefetch_priority: Option<i64>,
    /// Cache tier override.
    pub cache_tier_hint: Option<CacheTier>,
    /// Playback access override (`public` or `signed`); the global default when absent.
    #[serde(default)]
    pub playback: Option<PlaybackAccess>,
}
