//! ffmpeg filter graphs: one decode, constant frame rate, zscale (zimg) scaling, HDR tone mapping,
//! and the cascade (top rung from the source, lower rungs from the top rung's picture).
//!
//! Chroma siting is set to `center` on both sides of every zscale, which is what swscale assumes;
//! without it zimg shifts chroma and loses about 0.003 SSIM against a swscale reference.

use std::fmt::Write as _;

use super::ladder::Rung;
use super::probe::ProbedMedia;

/// Resampling kernel for every downscale.
const KERNEL: &str = "lanczos";

/// Output range and pixel format of the top chain.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// Limited-range 4:2:0 for H.264.
    Video,
    /// Full-range 4:2:0 for a JPEG poster.
    Jpeg,
}

impl Target {
    fn range(self) -> &'static str {
        match self {
            Self::Video => "tv",
            Self::Jpeg => "full",
        }
    }

    fn pix_fmt(self) -> &'static str {
        match self {
            Self::Video => "yuv420p",
            Self::Jpeg => "yuvj420p",
        }
    }
}

/// The ladder graph: `[0:N]` in, `[v0]`..`[vK]` out in `rungs` order (the last rung is the top).
pub(crate) fn ladder_graph(probed: &ProbedMedia, rungs: &[Rung]) -> String {
    let (num, den) = probed.frame_rate;
    let mut graph = format!("[0:{}]fps={num}/{den},", probed.video_stream);
    let top_index = rungs.len().saturating_sub(1);
    let Some(top) = rungs.last() else {
        return graph;
    };
    graph.push_str(&top_chain(probed, top.width, top.height, Target::Video));
    if rungs.len() == 1 {
        graph.push_str("[v0]");
        return graph;
    }
    let _ = write!(graph, ",split={}[v{top_index}]", rungs.len());
    for i in 0..top_index {
        let _ = write!(graph, "[c{i}]");
    }
    for (i, rung) in rungs.iter().take(top_index).enumerate() {
        let _ = write!(
            graph,
            ";[c{i}]zscale=w={}:h={}:f={KERNEL}:cin=center:c=center,format=yuv420p[v{i}]",
            rung.width, rung.height
        );
    }
    graph
}

/// Source picture to `width`×`height` BT.709 SDR in `target`'s range and pixel format.
pub(crate) fn top_chain(probed: &ProbedMedia, width: u32, height: u32, target: Target) -> String {
    if probed.is_hdr { hdr_chain(probed, width, height, target) } else { sdr_chain(probed, width, height, target) }
}

fn sdr_chain(probed: &ProbedMedia, width: u32, height: u32, target: Target) -> String {
    let matrix_in = zimg_matrix(probed.color.matrix.as_deref());
    let range_in = if probed.color.full_range { "full" } else { "tv" };
    format!(
        "zscale=w={width}:h={height}:f={KERNEL}:min={matrix_in}:rin={range_in}:cin=center:\
         m=709:r={}:c=center,format={}",
        target.range(),
        target.pix_fmt()
    )
}

/// Scale in linear light, tone-map (hable) to BT.709 primaries, then encode as BT.709 SDR.
fn hdr_chain(probed: &ProbedMedia, width: u32, height: u32, target: Target) -> String {
    let transfer_in = match probed.color.transfer.as_deref() {
        Some("smpte2084") => "smpte2084",
        _ => "arib-std-b67",
    };
    let range_in = if probed.color.full_range { "full" } else { "tv" };
    format!(
        "zscale=w={width}:h={height}:f={KERNEL}:tin={transfer_in}:pin=2020:min=2020_ncl:\
         rin={range_in}:cin=center:t=linear:npl=100,format=gbrpf32le,zscale=p=709,\
         tonemap=tonemap=hable:desat=0,zscale=t=709:m=709:r={}:c=center,format={}",
        target.range(),
        target.pix_fmt()
    )
}

/// zimg's name for an ffprobe matrix name; untagged video is taken as BT.709.
fn zimg_matrix(ffprobe_name: Option<&str>) -> &'static str {
    match ffprobe_name {
        Some("smpte170m") => "170m",
        Some("bt470bg") => "470bg",
        Some("bt2020nc") => "2020_ncl",
        Some("bt2020c") => "2020_cl",
        Some("smpte240m") => "240m",
        Some("fcc") => "fcc",
        _ => "709",
    }
}

#[cfg(test)]
mod tests {
    use super::super::ladder::{LadderConfig, plan_ladder};
    use super::super::probe::{Container, SourceColor};
    use super::*;

    fn source(is_hdr: bool) -> ProbedMedia {
        ProbedMedia {
            container: Container::Mp4Family,
            duration_ms: 2000,
            width: 1080,
            height: 1920,
            rotation: 0,
            video_stream: 1,
            video_codec: "h264".into(),
            bit_depth: 8,
            is_hdr,
            color: SourceColor { transfer: is_hdr.then(|| "arib-std-b67".into()), ..SourceColor::default() },
            frame_rate: (30, 1),
            video_bitrate_bps: None,
            audio_stream: None,
            has_audio: false,
            audio_channels: 0,
        }
    }

    #[test]
    fn cascade_scales_lower_rungs_from_the_top_picture() {
        let probed = source(false);
        let graph = ladder_graph(&probed, &plan_ladder(&probed, &LadderConfig::default()));
        assert!(graph.starts_with("[0:1]fps=30/1,zscale=w=720:h=1280:f=lanczos:min=709"));
        assert!(graph.contains(",split=4[v3][c0][c1][c2];"));
        assert!(graph.contains(";[c0]zscale=w=234:h=416:f=lanczos:cin=center:c=center"));
        assert!(graph.ends_with("[v2]"));
    }

    #[test]
    fn hdr_is_tone_mapped_to_bt709() {
        let chain = top_chain(&source(true), 720, 1280, Target::Video);
        assert!(chain.contains("tin=arib-std-b67:pin=2020"));
        assert!(chain.contains("tonemap=tonemap=hable"));
        assert!(chain.ends_with("zscale=t=709:m=709:r=tv:c=center,format=yuv420p"));
    }
}
