//! Why a video failed, as its creator sees it: a fixed vocabulary with a short sentence each.
//! The raw detail (ffmpeg's stderr, an object-store or database error, with keys and paths in
//! it) is kept for admins only (the failing job's `last_error`).

use serde::{Deserialize, Serialize};

/// The reason a video (or its phase 2) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Not a video container reel accepts (or not a media file at all).
    UnsupportedContainer,
    /// No video stream to play: audio only, a still image, or no picture at all.
    NoVideoStream,
    /// Longer than the configured maximum duration.
    DurationExceedsLimit,
    /// Frame size (or shape) beyond the configured limits.
    ResolutionExceedsLimit,
    /// More streams than reel accepts in one file.
    TooManyStreams,
    /// The file is truncated or damaged; no decodable video.
    CorruptMedia,
    /// Processing ran past the hard timeout.
    ProcessingTimeout,
    /// Processing failed on reel's side; a reprocess may succeed.
    InternalError,
}

impl FailureReason {
    /// Every reason.
    pub const ALL: [FailureReason; 8] = [
        FailureReason::UnsupportedContainer,
        FailureReason::NoVideoStream,
        FailureReason::DurationExceedsLimit,
        FailureReason::ResolutionExceedsLimit,
        FailureReason::TooManyStreams,
        FailureReason::CorruptMedia,
        FailureReason::ProcessingTimeout,
        FailureReason::InternalError,
    ];

    /// The stored (and served) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::UnsupportedContainer => "unsupported_container",
            FailureReason::NoVideoStream => "no_video_stream",
            FailureReason::DurationExceedsLimit => "duration_exceeds_limit",
            FailureReason::ResolutionExceedsLimit => "resolution_exceeds_limit",
            FailureReason::TooManyStreams => "too_many_streams",
            FailureReason::CorruptMedia => "corrupt_media",
            FailureReason::ProcessingTimeout => "processing_timeout",
            FailureReason::InternalError => "internal_error",
        }
    }

    /// A short sentence for the creator.
    pub fn message(self) -> &'static str {
        match self {
            FailureReason::UnsupportedContainer => "The file is not in a video format we accept.",
            FailureReason::NoVideoStream => "The file has no video to play.",
            FailureReason::DurationExceedsLimit => "The video is longer than the maximum allowed duration.",
            FailureReason::ResolutionExceedsLimit => "The video's frame size is beyond the allowed limits.",
            FailureReason::TooManyStreams => "The file has more streams than we accept.",
            FailureReason::CorruptMedia => "The file is damaged or truncated and cannot be decoded.",
            FailureReason::ProcessingTimeout => "Processing took too long; it can be retried.",
            FailureReason::InternalError => "Processing failed on our side; it can be retried.",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        FailureReason::ALL.into_iter().find(|reason| reason.as_str() == s)
    }

    /// The reason of a stored value: the vocabulary itself, or (for rows written before it
    /// existed, and for the media engine's rejection texts) the closest entry.
    pub fn classify(text: &str) -> Self {
        if let Some(reason) = FailureReason::parse(text) {
            return reason;
        }
        let text = text.to_ascii_lowercase();
        let has = |needle: &str| text.contains(needle);
        if has("duration") && has("exceeds") {
            FailureReason::DurationExceedsLimit
        } else if has("resolution") || has("aspect") || has("coded") || has("pixel") || has("exceeds limit") {
            FailureReason::ResolutionExceedsLimit
        } else if has("too many streams") {
            FailureReason::TooManyStreams
        } else if has("unsupported container")
            || has("not a media file")
            || has("not a regular file")
            || has("empty file")
        {
            FailureReason::UnsupportedContainer
        } else if has("audio only") || has("still image") || has("no video stream") {
            FailureReason::NoVideoStream
        } else if has("timeout") || has("timed out") {
            FailureReason::ProcessingTimeout
        } else if has("corrupt")
            || has("decodable")
            || has("truncated")
            || has("unknown duration")
            || has("picture size")
        {
            FailureReason::CorruptMedia
        } else {
            FailureReason::InternalError
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_engines_rejections_map_onto_the_vocabulary() {
        let cases = [
            ("unsupported container: hls", FailureReason::UnsupportedContainer),
            ("not a media file", FailureReason::UnsupportedContainer),
            ("audio only", FailureReason::NoVideoStream),
            ("still image", FailureReason::NoVideoStream),
            ("no video stream", FailureReason::NoVideoStream),
            ("duration 4h0m exceeds limit 10m", FailureReason::DurationExceedsLimit),
            ("resolution 8000x8000 exceeds limit 4096", FailureReason::ResolutionExceedsLimit),
            ("truncated or corrupt file: [mov,mp4 @ 0x55d] moov atom not found", FailureReason::CorruptMedia),
            ("no decodable video frame", FailureReason::CorruptMedia),
            ("too many streams", FailureReason::TooManyStreams),
            ("processing_timeout", FailureReason::ProcessingTimeout),
            ("transcode failed after 3 attempts: object store: S3 503", FailureReason::InternalError),
        ];
        for (text, reason) in cases {
            assert_eq!(FailureReason::classify(text), reason, "{text}");
        }
    }

    #[test]
    fn every_reason_round_trips_and_has_a_sentence() {
        for reason in FailureReason::ALL {
            assert_eq!(FailureReason::parse(reason.as_str()), Some(reason));
            assert!(reason.message().ends_with('.'));
        }
    }
}
