//! Which renditions to encode for a source: pure planning, no I/O.

use super::probe::ProbedMedia;

/// Lowest bitrate a rung is ever capped down to, even for a source that carries less.
const MIN_VIDEO_KBPS: u32 = 64;

/// One configured rung, named by the short side of its picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RungSpec {
    /// Short side in pixels (360 means 360×640 portrait or 640×360 landscape at 16:9).
    pub short_side: u32,
    /// Target video bitrate in kbit/s.
    pub video_kbps: u32,
}

impl RungSpec {
    /// The cellular floor rung (about 234×416 at 150 kb/s): a variant under 192 kb/s peak.
    pub const CELLULAR_FLOOR: Self = Self { short_side: 234, video_kbps: 150 };
}

/// How to build the ladder (`[pipeline.ladder]`; `rungs` is an array of
/// `{short_side, video_kbps}` tables).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LadderConfig {
    /// Candidate rungs; only those not larger than the source are used.
    pub rungs: Vec<RungSpec>,
    /// Segment duration in seconds (4 by default; at most 6).
    pub segment_seconds: f64,
    /// AAC bitrate in kbit/s (32–160).
    pub audio_bitrate_kbps: u32,
}

impl Default for LadderConfig {
    /// 360p at 800 kb/s, 540p at 1600 kb/s, 720p at 2800 kb/s; 4 s segments; AAC at 128 kb/s.
    fn default() -> Self {
        Self {
            rungs: vec![
                RungSpec { short_side: 360, video_kbps: 800 },
                RungSpec { short_side: 540, video_kbps: 1600 },
                RungSpec { short_side: 720, video_kbps: 2800 },
            ],
            segment_seconds: 4.0,
            audio_bitrate_kbps: 128,
        }
    }
}

impl LadderConfig {
    /// The same ladder plus the cellular floor rung.
    pub fn with_cellular_floor(mut self) -> Self {
        self.rungs.push(RungSpec::CELLULAR_FLOOR);
        self
    }

    /// Segment duration actually used: clamped to 1–6 s.
    pub fn segment_duration(&self) -> f64 {
        if self.segment_seconds.is_finite() { self.segment_seconds.clamp(1.0, 6.0) } else { 4.0 }
    }

    /// AAC bitrate actually used: clamped to the 32–160 kb/s the authoring rules allow.
    pub fn audio_kbps(&self) -> u32 {
        self.audio_bitrate_kbps.clamp(32, 160)
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
}

/// Plan the rungs for `probed`, lowest first.
///
/// Uses every configured rung whose short side fits in the source's (never upscaling); when none
/// fits, one rung at the source's own size (rounded down to even). Aspect ratio is kept, sides
/// are even, and no rung's bitrate exceeds what the source's video carries.
pub fn plan_ladder(probed: &ProbedMedia, cfg: &LadderConfig) -> Vec<Rung> {
    let source_short = probed.width.min(probed.height);
    let mut specs: Vec<RungSpec> =
        cfg.rungs.iter().copied().filter(|s| s.short_side >= 2 && s.short_side <= source_short).collect();
    specs.sort_by_key(|s| s.short_side);
    specs.dedup_by_key(|s| s.short_side);
    if specs.is_empty() {
        specs.push(own_size_spec(source_short, cfg));
    }
    specs.iter().map(|spec| plan_rung(probed, spec)).collect()
}

/// A rung at the source's own size, with a bitrate scaled by area from the smallest rung.
fn own_size_spec(source_short: u32, cfg: &LadderConfig) -> RungSpec {
    let reference = cfg
        .rungs
        .iter()
        .copied()
        .filter(|s| s.short_side > 0)
        .min_by_key(|s| s.short_side)
        .unwrap_or(RungSpec { short_side: 360, video_kbps: 800 });
    let short_side = even_floor(source_short);
    let area_ratio = (f64::from(short_side) / f64::from(reference.short_side)).powi(2);
    RungSpec { short_side, video_kbps: (f64::from(reference.video_kbps) * area_ratio).round() as u32 }
}

fn plan_rung(probed: &ProbedMedia, spec: &RungSpec) -> Rung {
    let (width, height) = fit_short_side(probed.width, probed.height, spec.short_side);
    let video_kbps = capped_kbps(spec.video_kbps, probed.video_bitrate_bps);
    Rung {
        name: format!("{}p", width.min(height)),
        width,
        height,
        video_kbps,
        maxrate_kbps: video_kbps.saturating_mul(5) / 4,
        bufsize_kbps: video_kbps.saturating_mul(2),
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
    fn portrait_1080p_gets_three_rungs_named_by_short_side() {
        let rungs = plan_ladder(&source(1080, 1920, None), &LadderConfig::default());
        assert_eq!(
            sizes(&rungs),
            vec![("360p".into(), 360, 640), ("540p".into(), 540, 960), ("720p".into(), 720, 1280)]
        );
        assert_eq!(rungs[2].video_kbps, 2800);
        assert_eq!(rungs[2].maxrate_kbps, 3500);
        assert_eq!(rungs[2].bufsize_kbps, 5600);
    }

    #[test]
    fn landscape_keeps_orientation() {
        let rungs = plan_ladder(&source(1920, 1080, None), &LadderConfig::default());
        assert_eq!(sizes(&rungs)[0], ("360p".into(), 640, 360));
    }

    #[test]
    fn never_upscales() {
        let rungs = plan_ladder(&source(600, 1066, None), &LadderConfig::default());
        assert_eq!(sizes(&rungs), vec![("360p".into(), 360, 640), ("540p".into(), 540, 960)]);
    }

    #[test]
    fn tiny_source_gets_one_rung_at_its_own_size() {
        let rungs = plan_ladder(&source(240, 426, None), &LadderConfig::default());
        assert_eq!(sizes(&rungs), vec![("240p".into(), 240, 426)]);
        assert!(rungs[0].video_kbps < 800);
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
        assert_eq!(kbps, vec![800, 1200, 1200]);
    }

    #[test]
    fn cellular_floor_is_opt_in() {
        let cfg = LadderConfig::default().with_cellular_floor();
        let rungs = plan_ladder(&source(1080, 1920, None), &cfg);
        assert_eq!(sizes(&rungs)[0], ("234p".into(), 234, 416));
        assert_eq!(rungs[0].video_kbps, 150);
        assert_eq!(rungs.len(), 4);
    }

    #[test]
    fn segment_duration_is_clamped() {
        let cfg = LadderConfig { segment_seconds: 10.0, ..LadderConfig::default() };
        assert_eq!(cfg.segment_duration(), 6.0);
    }
}
