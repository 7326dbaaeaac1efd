//! reel's media engine: safe probing of uploads, ladder planning, the single-process HLS fMP4
//! transcode, the multivariant playlist, and poster frames. Everything shells out to ffmpeg and
//! ffprobe under supervision (`process`).
//!
//! - `probe`: container allow-list, stream checks and limits → [`ProbedMedia`] or `Rejected`.
//! - `ladder`: pure rung planning ([`plan_ladder`]).
//! - `filters`: the one-decode, zscale, cascade filter graph (HDR tone mapping included).
//! - `transcode`: the encode, live segment reporting (`watch`), measurement (`output`, `mp4`).
//! - `playlist`: media playlists and [`master_playlist`].
//! - `poster`: a JPEG thumbnail.

mod error;
mod filters;
mod ladder;
mod mp4;
mod output;
mod playlist;
mod poster;
mod probe;
mod process;
mod transcode;
mod watch;

#[cfg(test)]
mod testutil;

use std::path::PathBuf;

pub use error::MediaError;
pub use ladder::{
    AudioPackaging, AudioTrack, LadderConfig, LadderPlan, Phase, Rung, RungSpec, SegmentGrid, audio_tracks,
    plan_ladder, plan_phases,
};
pub use mp4::segment_seconds;
pub use output::{AudioOutput, LadderOutput, RenditionOutput, SegmentStat, measure};
pub use playlist::{
    AudioRendition, Variant, event_playlist, master_playlist, master_playlist_for, master_playlist_of, render_master,
};
pub use poster::poster;
pub use probe::{Container, MediaLimits, ProbedMedia, SourceColor, probe};
pub use transcode::{init_codecs, transcode};

/// Where the ffmpeg and ffprobe binaries are (the `[media]` configuration section).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Tools {
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// The ffprobe binary.
    pub ffprobe: PathBuf,
}

impl Default for Tools {
    /// `ffmpeg` and `ffprobe` looked up on `PATH`.
    fn default() -> Self {
        Self { ffmpeg: PathBuf::from("ffmpeg"), ffprobe: PathBuf::from("ffprobe") }
    }
}
