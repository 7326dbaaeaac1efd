//! Which renditions to encode for a source, split into the two phases, and the segment grid they
//! all share: pure planning, no I/O.

use super::probe::ProbedMedia;

/// Lowest bitrate a rung is ever capped down to, even for a source that carries less.
const MIN_VIDEO_KBPS: u32 = 64;
/// Short side of the rung a source smaller than every configured rung is measured against.
const REFERENCE: RungSpec = RungSpec::new(360, 800);

/// One configured rung, named by the short side of its picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RungSpec {
    /// Short side in pixels (360 means 360×640 portrait or 640×360 landscape at 16:9).
    pub short_side: u32,
    /// Target video bitrate in kbit/s.
    pub video_kbps: u32,
    /// VBV maximum rate in kbit/s (default 1.25 × `video_kbps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxrate_kbps: Option<u32>,
    /// VBV buffer in kbit (default 2 × `video_kbps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bufsize_kbps: Option<u32>,
    /// AAC bitrate of the audio played with this rung (default: the ladder's `audio_bitrate_kbps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_kbps: Option<u32>,
}

impl RungSpec {
    /// The cellular floor rung: about 234×416, 120 kb/s video capped at 140 kb/s over a 1 s
    /// buffer, with 32 kb/s audio, so that its measured peak (1 s segments included) stays under
    /// Apple's 192 kb/s.
    pub const CELLULAR_FLOOR: Self = Self {
        short_side: 234,
        video_kbps: 120,
        maxrate_kbps: Some(140),
        bufsize_kbps: Some(140),
        audio_kbps: Some(32),
    };

    /// A rung with the default rate control (maxrate 1.25×, buffer 2×) and the ladder's audio.
    pub const fn new(short_side: u32, video_kbps: u32) -> Self {
        Self { short_side, video_kbps, maxrate_kbps: None, bufsize_kbps: None, audio_kbps: None }
    }
}

/// How audio is packaged (`pipeline.ladder.audio`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioPackaging {
    /// Audio muxed into every video rendition: a player needs one playlist, one init and one
    /// segment per start, not two of each. Each distinct audio bitrate is still encoded once.
    #[default]
    Muxed,
    /// Audio as its own renditions (`EXT-X-MEDIA` groups), one per distinct audio bitrate.
    Separate,
}

/// How to build the ladder (`[pipeline.ladder]`; `rungs` is an array of
/// `{short_side, video_kbps}` tables, optionally with `maxrate_kbps`, `bufsize_kbps`,
/// `audio_kbps`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LadderConfig {
    /// Candidate rungs; only those not larger than the source are used.
    pub rungs: Vec<RungSpec>,
    /// Segment duration in whole seconds (4 by default; 1–6).
    pub segment_seconds: f64,
    /// Start with shorter segments (1 s, 2 s, then `segment_seconds`) so playback starts sooner
    /// and the buffer grows faster than it drains.
    pub graduated_start: bool,
    /// AAC bitrate in kbit/s (32–160) of rungs that do not set their own.
    pub audio_bitrate_kbps: u32,
    /// Audio muxed into each rendition or as separate renditions.
    pub audio: AudioPackaging,
    /// Rungs up to this short side are the start rungs, encoded and published first.
    pub start_max_short_side: u32,
}

impl Default for LadderConfig {
    /// The cellular floor, 360p at 800 kb/s, 540p at 1600 kb/s, 720p at 2800 kb/s; 1 s, 2 s,
    /// then 4 s segments; AAC at 128 kb/s muxed into each rendition; 360p and below start.
    fn default() -> Self {
        Self {
            rungs: vec![
                RungSpec::CELLULAR_FLOOR,
                RungSpec::new(360, 800),
                RungSpec::new(540, 1600),
                RungSpec::new(720, 2800),
            ],
            segment_seconds: 4.0,
            graduated_start: true,
            audio_bitrate_kbps: 128,
            audio: AudioPackaging::Muxed,
            start_max_short_side: 360,
        }
    }
}

impl LadderConfig {
    /// The same ladder without the cellular floor rung (short sides under 300).
    pub fn without_cellular_floor(mut self) -> Self {
        self.rungs.retain(|r| r.short_side >= 300);
        self
    }

    /// Segment duration actually used, in whole seconds: rounded and clamped to 1–6 s.
    pub fn segment_duration(&self) -> u32 {
        if self.segment_seconds.is_finite() { self.segment_seconds.round().clamp(1.0, 6.0) as u32 } else { 4 }
    }

    /// AAC bitrate actually used by default: clamped to the 32–160 kb/s the authoring rules allow.
    pub fn audio_kbps(&self) -> u32 {
        self.audio_bitrate_kbps.clamp(32, 160)
    }

    /// The segment grid every rung and the audio share.
    pub fn grid(&self) -> SegmentGrid {
        let length = self.segment_duration();
        let ramp = if self.graduated_start { [1, 2].into_iter().filter(|&s| s < length).collect() } else { vec![] };
        SegmentGrid { ramp, length }
    }
}

/// Segment boundaries: the ramp's durations, then `length` seconds each. Every rung cuts (and
/// has an IDR) at the same boundaries, whichever process encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentGrid {
    /// Leading segment durations in seconds (1, 2 by default).
    pub ramp: Vec<u32>,
    /// Duration of every later segment in seconds.
    pub length: u32,
}

impl SegmentGrid {
    /// Start of segment `index` (0-based) in seconds: 0, 1, 3, 7, 11, … by default.
    pub fn boundary(&self, index: usize) -> u32 {
        let ramped: u32 = self.ramp.iter().take(index).sum();
        let later = u32::try_from(index.saturating_sub(self.ramp.len())).unwrap_or(u32::MAX);
        ramped.saturating_add(later.saturating_mul(self.length))
    }

    /// Nominal duration of segment `index` in seconds (the last one of a video may be shorter).
    pub fn duration(&self, index: usize) -> u32 {
        self.ramp.get(index).copied().unwrap_or(self.length)
    }

    /// EXT-X-TARGETDURATION of every playlist on this grid (known before any segment exists).
    pub fn target_duration(&self) -> u32 {
        self.length
    }

    /// Boundaries up to `seconds`: each segment's (start, end), the last clipped to `seconds`.
    pub fn segments(&self, seconds: f64) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let mut index = 0;
        while f64::from(self.boundary(index)) < seconds - 1e-6 {
            let start = f64::from(self.boundary(index));
            out.push((start, f64::from(self.boundary(index + 1)).min(seconds)));
            index += 1;
        }
        out
    }

    /// ffmpeg's `-force_key_frames` expression: an IDR on the first frame at or after each
    /// boundary (half a frame early, so that rounding of `t` never pushes one a frame late).
    pub(crate) fn force_key_frames(&self, fps: f64) -> String {
        let half_frame = 0.5 / fps.max(1.0);
        let mut next = format!("{}+{}*(n_forced-{})", self.boundary(self.ramp.len()), self.length, self.ramp.len());
        for index in (0..self.ramp.len()).rev() {
            next = format!("if(eq(n_forced,{index}),{},{next})", self.boundary(index));
        }
        format!("expr:gte(t,{next}-{half_frame:.6})")
    }
}

/// One planned rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    /// Name and directory, from the short side: "720p".
    pub name: String,
    /// Output width (even).
    pub width: u32,
    /// Output height (even).
    pub height: u32,
    /// Target average video bitrate (kbit/s).
    pub video_kbps: u32,
    /// VBV maximum rate (kbit/s).
    pub maxrate_kbps: u32,
    /// VBV buffer size (kbit).
    pub bufsize_kbps: u32,
    /// AAC bitrate of the audio played with this rung (kbit/s).
    pub audio_kbps: u32,
}

impl Rung {
    /// The short side of the picture.
    pub fn short_side(&self) -> u32 {
        self.width.min(self.height)
    }
}

/// The rungs of one video, split by phase. Both lists are lowest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderPlan {
    /// Phase 1: the rungs players start on (the floor and 360p, or the source's size when
    /// smaller). Never empty.
    pub start: Vec<Rung>,
    /// Phase 2: every other rung (may be empty for small sources).
    pub remaining: Vec<Rung>,
}

impl LadderPlan {
    /// Every rung, lowest first.
    pub fn all(&self) -> Vec<Rung> {
        self.start.iter().chain(&self.remaining).cloned().collect()
    }
}

/// A separate audio rendition: one AAC encode at `kbps`, packaged under `name/` and referenced
/// as the `EXT-X-MEDIA` group `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    /// Directory and group id: "audio" at the ladder's default bitrate, "audio-32k" otherwise.
    pub name: String,
    /// AAC bitrate (kbit/s).
    pub kbps: u32,
}

impl AudioTrack {
    /// The track a rung plays with.
    pub fn for_rung(rung: &Rung, cfg: &LadderConfig) -> Self {
        let name = if rung.audio_kbps == cfg.audio_kbps() {
            "audio".to_owned()
        } else {
            format!("audio-{}k", rung.audio_kbps)
        };
        Self { name, kbps: rung.audio_kbps }
    }
}

/// What one ffmpeg run encodes: video rungs (each with its audio muxed in when the ladder muxes
/// audio) and separate audio tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Video rungs, lowest first.
    pub rungs: Vec<Rung>,
    /// Separate audio renditions (empty when audio is muxed).
    pub audio: Vec<AudioTrack>,
}

impl LadderPlan {
    /// Phase 1: the start rungs, plus (audio packaged separately) every audio track the whole
    /// ladder uses, so the ladder's audio is encoded once and is complete when phase 1 is.
    pub fn start_phase(&self, cfg: &LadderConfig) -> Phase {
        Phase { rungs: self.start.clone(), audio: audio_tracks(&self.all(), cfg) }
    }

    /// Phase 2: the remaining rungs, with no audio track of their own.
    pub fn remaining_phase(&self) -> Phase {
        Phase { rungs: self.remaining.clone(), audio: Vec::new() }
    }

    /// Both phases in one run.
    pub fn single_phase(&self, cfg: &LadderConfig) -> Phase {
        let rungs = self.all();
        Phase { audio: audio_tracks(&rungs, cfg), rungs }
    }
}

/// The distinct separate audio tracks `rungs` play with; none when audio is muxed.
pub fn audio_tracks(rungs: &[Rung], cfg: &LadderConfig) -> Vec<AudioTrack> {
    if cfg.audio == AudioPackaging::Muxed {
        return Vec::new();
    }
    let mut tracks: Vec<AudioTrack> = rungs.iter().map(|r| AudioTrack::for_rung(r, cfg)).collect();
    tracks.sort_by_key(|t| t.kbps);
    tracks.dedup();
    tracks
}

/// Plan the rungs for `probed`, lowest first.
///
/// Uses every configured rung whose short side fits in the source's (never upscaling). A source
/// smaller than the start size (360p) that matches no configured rung also gets a rung at its own
/// size (rounded down to even), so a small upload keeps its own resolution beside the floor. Aspect
/// ratio is kept, sides are even, and no rung's bitrate exceeds what the source's video carries.
pub fn plan_ladder(probed: &ProbedMedia, cfg: &LadderConfig) -> Vec<Rung> {
    let source_short = probed.width.min(probed.height);
    let mut specs: Vec<RungSpec> =
        cfg.rungs.iter().copied().filter(|s| s.short_side >= 2 && s.short_side <= source_short).collect();
    let own = even_floor(source_short);
    let small = source_short < cfg.start_max_short_side.max(2);
    if specs.is_empty() || (small && specs.iter().all(|s| s.short_side != own)) {
        specs.push(own_size_spec(source_short, cfg));
    }
    specs.sort_by_key(|s| s.short_side);
    specs.dedup_by_key(|s| s.short_side);
    specs.iter().map(|spec| plan_rung(probed, spec, cfg)).collect()
}

/// [`plan_ladder`] split into the start rungs (short side up to `start_max_short_side`, at least
/// the lowest rung) and the remaining rungs.
pub fn plan_phases(probed: &ProbedMedia, cfg: &LadderConfig) -> LadderPlan {
    let mut start = plan_ladder(probed, cfg);
    let split = start.iter().position(|r| r.short_side() > cfg.start_max_short_side).unwrap_or(start.len()).max(1);
    let remaining = start.split_off(split.min(start.len()));
    LadderPlan { start, remaining }
}

/// A rung at the source's own size, with a bitrate scaled by area from the smallest configured
/// rung at or above it (360p at 800 kb/s when there is none).
fn own_size_spec(source_short: u32, cfg: &LadderConfig) -> RungSpec {
    let reference = cfg
        .rungs
        .iter()
        .copied()
        .filter(|s| s.short_side >= source_short)
        .min_by_key(|s| s.short_side)
        .unwrap_or(REFERENCE);
    let short_side = even_floor(source_short);
    let area_ratio = (f64::from(short_side) / f64::from(reference.short_side.max(1))).powi(2);
    RungSpec::new(short_side, (f64::from(reference.video_kbps) * area_ratio).round() as u32)
}

fn plan_rung(probed: &ProbedMedia, spec: &RungSpec, cfg: &LadderConfig) -> Rung {
    let (width, height) = fit_short_side(probed.width, probed.height, spec.short_side);
    let video_kbps = capped_kbps(spec.video_kbps, probed.video_bitrate_bps);
    let maxrate_kbps = spec.maxrate_kbps.unwrap_or(video_kbps.saturating_mul(5) / 4).max(video_kbps);
    Rung {
        name: format!("{}p", width.min(height)),
        width,
        height,
        video_kbps,
        maxrate_kbps,
        bufsize_kbps: spec.bufsize_kbps.unwrap_or(video_kbps.saturating_mul(2)).max(1),
        audio_kbps: spec.audio_kbps.unwrap_or(cfg.audio_bitrate_kbps).clamp(32, 160),
    }
}

/// Even (width, height) with the given short side and the source's aspect ratio.
pub(crate) fn fit_short_side(width: u32, height: u32, short_side: u32) -> (u32, u32) {
    let source_short = width.min(height).max(1);
    let source_long = width.max(height);
    let short = even_floor(short_side.min(source_short));
    let long = even_round(f64::from(source_long) * f64::from(short) / f64::from(source_short));
    if width <= height { (short, long) } else { (long, short) }
}

fn capped_kbps(target: u32, source_bps: Option<u64>) -> u32 {
    let Some(source_bps) = source_bps else {
        return target.max(MIN_VIDEO_KBPS);
    };
    let source_kbps = u32::try_from(source_bps / 1000).unwrap_or(u32::MAX);
    target.min(source_kbps).max(MIN_VIDEO_KBPS)
}

fn even_floor(value: u32) -> u32 {
    (value & !1).max(2)
}

fn even_round(value: f64) -> u32 {
    ((value / 2.0).round() as u32 * 2).max(2)
}

#[cfg(test)]
mod tests {
    use super::super::probe::{Container, SourceColor};
    use super::*;

    fn source(width: u32, height: u32, bitrate: Option<u64>) -> ProbedMedia {
        ProbedMedia {
            container: Container::Mp4Family,
            duration_ms: 10_000,
            width,
            height,
            rotation: 0,
            video_stream: 0,
            video_codec: "h264".into(),
            bit_depth: 8,
            is_hdr: false,
            color: SourceColor::default(),
            frame_rate: (30, 1),
            video_bitrate_bps: bitrate,
            audio_stream: Some(1),
            has_audio: true,
            audio_channels: 2,
        }
    }

    fn sizes(rungs: &[Rung]) -> Vec<(String, u32, u32)> {
        rungs.iter().map(|r| (r.name.clone(), r.width, r.height)).collect()
    }

    #[test]
    fn portrait_1080p_gets_the_floor_and_three_rungs_named_by_short_side() {
        let rungs = plan_ladder(&source(1080, 1920, None), &LadderConfig::default());
        assert_eq!(
            sizes(&rungs),
            vec![
                ("234p".into(), 234, 416),
                ("360p".into(), 360, 640),
                ("540p".into(), 540, 960),
                ("720p".into(), 720, 1280)
            ]
        );
        assert_eq!(
            (rungs[0].video_kbps, rungs[0].maxrate_kbps, rungs[0].bufsize_kbps, rungs[0].audio_kbps),
            (120, 140, 140, 32)
        );
        assert_eq!(
            (rungs[3].video_kbps, rungs[3].maxrate_kbps, rungs[3].bufsize_kbps, rungs[3].audio_kbps),
            (2800, 3500, 5600, 128)
        );
    }

    #[test]
    fn phases_split_the_start_rungs_from_the_rest() {
        let plan = plan_phases(&source(1080, 1920, None), &LadderConfig::default());
        assert_eq!(sizes(&plan.start).iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["234p", "360p"]);
        assert_eq!(sizes(&plan.remaining).iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["540p", "720p"]);
        assert_eq!(plan.all(), plan_ladder(&source(1080, 1920, None), &LadderConfig::default()));
        let small = plan_phases(&source(300, 534, None), &LadderConfig::default());
        assert_eq!(sizes(&small.start), vec![("234p".into(), 234, 416), ("300p".into(), 300, 534)]);
        assert!(small.remaining.is_empty());
        let no_floor = LadderConfig { rungs: vec![RungSpec::new(720, 2800)], ..LadderConfig::default() };
        let plan = plan_phases(&source(1080, 1920, None), &no_floor);
        assert_eq!(sizes(&plan.start), vec![("720p".into(), 720, 1280)], "the lowest rung always starts");
    }

    #[test]
    fn landscape_keeps_orientation() {
        let rungs = plan_ladder(&source(1920, 1080, None), &LadderConfig::default());
        assert_eq!(sizes(&rungs)[1], ("360p".into(), 640, 360));
    }

    #[test]
    fn never_upscales() {
        let rungs = plan_ladder(&source(600, 1066, None), &LadderConfig::default().without_cellular_floor());
        assert_eq!(sizes(&rungs), vec![("360p".into(), 360, 640), ("540p".into(), 540, 960)]);
    }

    #[test]
    fn tiny_source_gets_a_rung_at_its_own_size() {
        let rungs = plan_ladder(&source(200, 356, None), &LadderConfig::default());
        assert_eq!(sizes(&rungs), vec![("200p".into(), 200, 356)]);
        assert!(rungs[0].video_kbps < 800);
        let rungs = plan_ladder(&source(240, 426, None), &LadderConfig::default());
        assert_eq!(sizes(&rungs), vec![("234p".into(), 234, 416), ("240p".into(), 240, 426)]);
        assert_eq!(rungs[1].video_kbps, 356, "scaled by area from 360p");
    }

    #[test]
    fn odd_sizes_become_even() {
        let rungs = plan_ladder(&source(201, 357, None), &LadderConfig::default());
        assert_eq!(sizes(&rungs), vec![("200p".into(), 200, 356)]);
    }

    #[test]
    fn bitrate_is_capped_at_what_the_source_carries() {
        let rungs = plan_ladder(&source(1080, 1920, Some(1_200_000)), &LadderConfig::default());
        let kbps: Vec<u32> = rungs.iter().map(|r| r.video_kbps).collect();
        assert_eq!(kbps, vec![120, 800, 1200, 1200]);
    }

    #[test]
    fn the_cellular_floor_can_be_switched_off() {
        let rungs = plan_ladder(&source(1080, 1920, None), &LadderConfig::default().without_cellular_floor());
        assert_eq!(sizes(&rungs)[0], ("360p".into(), 360, 640));
        assert_eq!(rungs.len(), 3);
    }

    #[test]
    fn segment_duration_is_whole_seconds_and_clamped() {
        let cfg = LadderConfig { segment_seconds: 10.0, ..LadderConfig::default() };
        assert_eq!(cfg.segment_duration(), 6);
        let cfg = LadderConfig { segment_seconds: 2.4, ..LadderConfig::default() };
        assert_eq!(cfg.segment_duration(), 2);
    }

    #[test]
    fn the_grid_ramps_one_two_then_the_configured_length() {
        let grid = LadderConfig::default().grid();
        let starts: Vec<u32> = (0..6).map(|i| grid.boundary(i)).collect();
        assert_eq!(starts, [0, 1, 3, 7, 11, 15]);
        assert_eq!(grid.target_duration(), 4);
        assert_eq!(grid.segments(8.5), vec![(0.0, 1.0), (1.0, 3.0), (3.0, 7.0), (7.0, 8.5)]);
        assert_eq!(grid.segments(7.0).len(), 3);
        let flat = LadderConfig { graduated_start: false, ..LadderConfig::default() }.grid();
        assert_eq!((0..3).map(|i| flat.boundary(i)).collect::<Vec<_>>(), [0, 4, 8]);
        let short = LadderConfig { segment_seconds: 2.0, ..LadderConfig::default() }.grid();
        assert_eq!((0..4).map(|i| short.boundary(i)).collect::<Vec<_>>(), [0, 1, 3, 5]);
        let one = LadderConfig { segment_seconds: 1.0, ..LadderConfig::default() }.grid();
        assert_eq!((0..3).map(|i| one.boundary(i)).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn key_frames_are_forced_on_the_grid() {
        let expr = LadderConfig::default().grid().force_key_frames(30.0);
        assert_eq!(expr, "expr:gte(t,if(eq(n_forced,0),0,if(eq(n_forced,1),1,3+4*(n_forced-2)))-0.016667)");
    }
}
