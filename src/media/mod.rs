//! reel's media engine: safe probing of uploads, ladder planning, the HLS fMP4 transcode (one
//! process per phase), media and multivariant playlists, and poster frames. Everything shells
//! out to ffmpeg and ffprobe under supervision (`process`).
//!
//! - `probe`: container allow-list, stream checks and limits → [`ProbedMedia`] or `Rejected`.
//! - `ladder`: pure planning: rungs ([`plan_ladder`]), the two phases ([`plan_phases`]) and the
//!   shared [`SegmentGrid`] (1 s, 2 s, then `segment_seconds`; IDRs only on it).
//! - `filters`: the one-decode, zscale, cascade filter graph (HDR tone mapping included).
//! - `transcode`: the encode of one [`Phase`], live segment reporting (`watch`), measurement
//!   (`output`, `mp4`).
//! - `playlist`: VOD and growing EVENT media playlists, multivariant playlists.
//! - `poster`: a JPEG thumbnail.
//!
//! # Using it from the pipeline
//!
//! ```text
//! let plan = media::plan_phases(&probed, &cfg);          // start: floor + 360p; remaining: the rest
//! // Phase 1 (the start rungs; with separate audio also every audio track of the ladder):
//! let start = media::transcode(&tools, src, &probed, &plan.start_phase(&cfg), &cfg, out, timeout, tx).await?;
//! // Phase 2, a separate ffmpeg run (same boundaries, same count; see docs/BENCHMARKS.md):
//! let rest = media::transcode(&tools, src, &probed, &plan.remaining_phase(), &cfg, out2, timeout, tx2).await?;
//! let ladder = start.clone().merge(rest);                // LadderOutput is serde, to carry phase 1 over
//! media::master_playlist(&ladder)                        // every rung, lowest (the floor) first
//! media::master_playlist_of(&start, &["234p", "360p"])   // a master over a subset, measured
//! ```
//!
//! - `tx` receives each file's path as soon as it is complete: a rendition's `init.mp4` right
//!   before its first segment, then `seg-00001.m4s`, `seg-00002.m4s`, … in order, and at the end
//!   each `index.m3u8` (a finished VOD playlist). Paths are under `out`; the object key is the
//!   path relative to `out`.
//! - While phase 1 runs, publish each start rung as a growing EVENT playlist:
//!   [`event_playlist`]`(&segments, cfg.grid().target_duration(), ended)`, each segment's
//!   [`SegmentStat`] from [`segment_stat`] (its exact duration, read from its fragments) as it is
//!   reported. After phase 1, `event_playlist(&rendition.segments, target, true)` lists the same
//!   segments with `#EXT-X-ENDLIST` (an EVENT playlist may only grow).
//! - A preview master before measurements exist: [`Variant::planned`] (peak = VBV maximum +
//!   audio; codecs from [`init_codecs`] of the rung's directory once its first segment landed)
//!   and [`render_master`]. The floor rung is listed first: players start there.
//! - `pipeline.ladder.audio = "muxed" | "separate"` (env `REEL_PIPELINE__LADDER__AUDIO`) switches
//!   the packaging; `graduated_start = false` gives flat segments; the floor is a rung like any
//!   other ([`RungSpec::CELLULAR_FLOOR`]).

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
pub use mp4::segment_duration;
pub use output::{AudioOutput, LadderOutput, RenditionOutput, SegmentStat, measure};
pub use playlist::{
    AudioRendition, Variant, event_playlist, master_playlist, master_playlist_for, master_playlist_of, render_master,
};
pub use poster::poster;
pub use probe::{Container, MediaLimits, ProbedMedia, SourceColor, probe};
pub use transcode::{init_codecs, segment_stat, transcode};

/// Where the ffmpeg and ffprobe binaries are (the `[media]` configuration section).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Tools {
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// The ffprobe binary.
    pub ffprobe: PathBuf,
    /// Resource limits of every run (`[media.limits]`).
    pub limits: ChildLimits,
}

impl Default for Tools {
    /// `ffmpeg` and `ffprobe` looked up on `PATH`, with the default limits.
    fn default() -> Self {
        Self { ffmpeg: PathBuf::from("ffmpeg"), ffprobe: PathBuf::from("ffprobe"), limits: ChildLimits::default() }
    }
}

/// Kernel limits on each ffmpeg/ffprobe run (`RLIMIT_CPU`, `RLIMIT_AS`), so that a decoder
/// bug or a hostile file cannot spin or allocate without bound. `0` leaves a limit unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ChildLimits {
    /// CPU seconds one run may use (over all its threads). `REEL_MEDIA__LIMITS__CPU_SECONDS`.
    pub cpu_seconds: u64,
    /// Virtual address space of one run, bytes. `REEL_MEDIA__LIMITS__ADDRESS_SPACE_BYTES`.
    pub address_space_bytes: u64,
}

impl Default for ChildLimits {
    /// 4 CPU-hours (the pipeline's 30-minute deadline on 8 busy cores) and 16 GiB of address
    /// space (a 4K ladder's encoders and their threads' arenas fit well within it).
    fn default() -> Self {
        ChildLimits { cpu_seconds: 4 * 3600, address_space_bytes: 16 << 30 }
    }
}
