//! Media playlists (finished VOD ones rewritten from ffmpeg's, growing EVENT ones for progressive
//! publishing) and multivariant playlists (written by reel, over all renditions or a subset).

use std::fmt::Write as _;

use super::ladder::Rung;
use super::output::{LadderOutput, RenditionOutput, SegmentStat, combined_peak};

/// (EXTINF seconds, URI) pairs of a media playlist, in order.
pub(crate) fn parse_media_playlist(text: &str) -> Result<Vec<(f64, String)>, String> {
    let mut entries = Vec::new();
    let mut pending: Option<f64> = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let seconds = rest.split(',').next().unwrap_or_default().trim();
            let seconds = seconds
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| format!("bad EXTINF: {line}"))?;
            pending = Some(seconds);
        } else if !line.starts_with('#') {
            let seconds = pending.take().ok_or_else(|| format!("segment without EXTINF: {line}"))?;
            entries.push((seconds, line.to_string()));
        }
    }
    if entries.is_empty() {
        return Err("playlist lists no segments".into());
    }
    Ok(entries)
}

/// A finished VOD media playlist for fMP4 segments with `init.mp4` as the map.
pub(crate) fn render_media_playlist(segments: &[SegmentStat], target_duration: u32) -> String {
    render_media(segments, target_duration, "VOD", true)
}

/// A growing `EVENT` media playlist (RFC 8216 §4.3.3.5) for a rendition being published while it
/// is encoded: the segments so far, with `#EXT-X-ENDLIST` only once `ended`. `target_duration`
/// must not change while it grows: use the grid's
/// [`target_duration`](super::SegmentGrid::target_duration).
pub fn event_playlist(segments: &[SegmentStat], target_duration: u32, ended: bool) -> String {
    render_media(segments, target_duration, "EVENT", ended)
}

fn render_media(segments: &[SegmentStat], target_duration: u32, kind: &str, ended: bool) -> String {
    let mut text = String::new();
    text.push_str("#EXTM3U\n#EXT-X-VERSION:7\n");
    let _ = writeln!(text, "#EXT-X-TARGETDURATION:{target_duration}");
    let _ = writeln!(text, "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{kind}");
    text.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n");
    for segment in segments {
        let _ = writeln!(text, "#EXTINF:{:.6},\n{}", segment.duration, segment.uri);
    }
    if ended {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    text
}

/// The target duration every playlist shares: the longest segment, rounded to nearest (RFC 8216).
pub(crate) fn target_duration<'a>(segments: impl IntoIterator<Item = &'a SegmentStat>) -> u32 {
    let longest = segments.into_iter().map(|s| s.duration).fold(0.0_f64, f64::max);
    (longest.round() as u32).max(1)
}

/// One `EXT-X-STREAM-INF` entry of a multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Media playlist URI relative to the master: "360p/index.m3u8".
    pub uri: String,
    /// Peak bit/s, audio included.
    pub bandwidth: u64,
    /// Average bit/s, audio included.
    pub average_bandwidth: u64,
    /// RFC 6381 codecs of everything the variant plays, e.g. "avc1.64001e,mp4a.40.2".
    pub codecs: String,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Constant frame rate (numerator, denominator).
    pub frame_rate: (u32, u32),
    /// The separate audio rendition it plays with (`EXT-X-MEDIA` group id).
    pub audio_group: Option<String>,
}

/// One separate audio rendition (`EXT-X-MEDIA:TYPE=AUDIO`), its own group.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioRendition {
    /// Group id and directory: "audio", "audio-32k".
    pub group: String,
    /// Channel count.
    pub channels: u32,
}

impl Variant {
    /// A packaged rendition with its measured numbers; the audio it plays with is added in.
    pub fn measured(out: &LadderOutput, rendition: &RenditionOutput) -> Self {
        let audio = rendition.audio_group.as_deref().and_then(|group| out.audio_group(group));
        let (bandwidth, average_bandwidth, codecs) = match audio {
            Some(audio) => (
                combined_peak(&rendition.segments, &audio.segments),
                rendition.average_bps + audio.average_bps,
                format!("{},{}", rendition.codecs, audio.codecs),
            ),
            None => (rendition.peak_bps, rendition.average_bps, rendition.codecs.clone()),
        };
        Self {
            uri: format!("{}/index.m3u8", rendition.name),
            bandwidth,
            average_bandwidth,
            codecs,
            width: rendition.width,
            height: rendition.height,
            frame_rate: rendition.frame_rate,
            audio_group: audio.map(|a| a.name.clone()),
        }
    }

    /// A rung still being encoded (a preview master): peak from its rate control (VBV maximum
    /// plus audio), average from its target bitrates. `codecs` comes from its init segment
    /// ([`init_codecs`](super::init_codecs)); with audio packaged separately, `audio` is the
    /// group it plays with and the audio codec (`("audio", "mp4a.40.2")`).
    pub fn planned(rung: &Rung, frame_rate: (u32, u32), codecs: &str, audio: Option<(&str, &str)>) -> Self {
        let audio_bps = u64::from(rung.audio_kbps) * 1000;
        let has_audio = audio.is_some() || codecs.contains("mp4a");
        let audio_bps = if has_audio { audio_bps } else { 0 };
        let codecs = match audio {
            Some((_, audio_codecs)) => format!("{codecs},{audio_codecs}"),
            None => codecs.to_owned(),
        };
        Self {
            uri: format!("{}/index.m3u8", rung.name),
            bandwidth: u64::from(rung.maxrate_kbps) * 1000 + audio_bps,
            average_bandwidth: u64::from(rung.video_kbps) * 1000 + audio_bps,
            codecs,
            width: rung.width,
            height: rung.height,
            frame_rate,
            audio_group: audio.map(|(group, _)| group.to_owned()),
        }
    }
}

/// The multivariant playlist listing every rendition, lowest bandwidth first (players start on
/// the first).
pub fn master_playlist(out: &LadderOutput) -> String {
    let mut variants: Vec<Variant> = out.renditions.iter().map(|r| Variant::measured(out, r)).collect();
    variants.sort_by_key(|v| v.bandwidth);
    render_master(&variants, &audio_renditions(out))
}

/// The multivariant playlist listing only the renditions named in `names` (e.g. the start rungs
/// for a preview), lowest bandwidth first. `None` when a name is unknown or `names` is empty.
pub fn master_playlist_of(out: &LadderOutput, names: &[&str]) -> Option<String> {
    let mut variants = Vec::with_capacity(names.len());
    for name in names {
        let rendition = out.renditions.iter().find(|r| r.name == *name)?;
        variants.push(Variant::measured(out, rendition));
    }
    variants.sort_by_key(|v| v.bandwidth);
    (!variants.is_empty()).then(|| render_master(&variants, &audio_renditions(out)))
}

/// The multivariant playlist listing the renditions at `order` (indices into
/// `out.renditions`), in that order: the first is where players start. `None` when `order` is
/// empty or holds an index out of range.
pub fn master_playlist_for(out: &LadderOutput, order: &[usize]) -> Option<String> {
    if order.is_empty() || order.iter().any(|&i| i >= out.renditions.len()) {
        return None;
    }
    let variants: Vec<Variant> =
        order.iter().filter_map(|&i| out.renditions.get(i)).map(|r| Variant::measured(out, r)).collect();
    Some(render_master(&variants, &audio_renditions(out)))
}

fn audio_renditions(out: &LadderOutput) -> Vec<AudioRendition> {
    out.audio.iter().map(|a| AudioRendition { group: a.name.clone(), channels: a.channels }).collect()
}

/// A multivariant playlist of `variants`, in the order given, declaring those of `audio` that a
/// listed variant plays with.
pub fn render_master(variants: &[Variant], audio: &[AudioRendition]) -> String {
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for rendition in audio.iter().filter(|a| variants.iter().any(|v| v.audio_group.as_deref() == Some(&a.group))) {
        let _ = writeln!(
            text,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{group}\",NAME=\"Main\",DEFAULT=YES,\
             AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"{group}/index.m3u8\"",
            rendition.channels,
            group = rendition.group
        );
    }
    for variant in variants {
        text.push_str(&stream_inf(variant));
    }
    text
}

fn stream_inf(variant: &Variant) -> String {
    let (num, den) = variant.frame_rate;
    let fps = f64::from(num) / f64::from(den.max(1));
    let mut line = format!(
        "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},FRAME-RATE={fps:.3}",
        variant.bandwidth, variant.average_bandwidth, variant.codecs, variant.width, variant.height
    );
    if let Some(group) = &variant.audio_group {
        let _ = write!(line, ",AUDIO=\"{group}\"");
    }
    let _ = write!(line, "\n{}\n", variant.uri);
    line
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::output::AudioOutput;
    use super::*;

    fn segments(bytes: &[u64]) -> Vec<SegmentStat> {
        bytes
            .iter()
            .enumerate()
            .map(|(i, &bytes)| SegmentStat { uri: format!("seg-{:05}.m4s", i + 1), duration: 4.0, bytes })
            .collect()
    }

    fn rendition(name: &str, width: u32, height: u32, bytes: &[u64], audio: bool) -> RenditionOutput {
        let segments = segments(bytes);
        let (peak_bps, average_bps) = super::super::output::measure(&segments);
        RenditionOutput {
            name: name.into(),
            dir: PathBuf::from(name),
            width,
            height,
            frame_rate: (30000, 1001),
            codecs: "avc1.64001f".into(),
            audio_group: audio.then(|| "audio".into()),
            segments,
            peak_bps,
            average_bps,
        }
    }

    fn ladder(with_audio: bool) -> LadderOutput {
        let audio = with_audio.then_some(AudioOutput {
            name: "audio".into(),
            dir: PathBuf::from("audio"),
            codecs: "mp4a.40.2".into(),
            channels: 2,
            segments: segments(&[64_000, 64_000]),
            peak_bps: 128_000,
            average_bps: 128_000,
        });
        LadderOutput {
            renditions: vec![
                rendition("720p", 720, 1280, &[1_400_000, 1_000_000], with_audio),
                rendition("360p", 360, 640, &[400_000, 300_000], with_audio),
            ],
            audio: audio.into_iter().collect(),
            target_duration: 4,
        }
    }

    #[test]
    fn master_with_audio_lists_lowest_first_with_measured_numbers() {
        let text = master_playlist(&ladder(true));
        let expected = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Main\",DEFAULT=YES,AUTOSELECT=YES,\
            CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=928000,AVERAGE-BANDWIDTH=828000,\
            CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=360x640,FRAME-RATE=29.970,AUDIO=\"audio\"\n\
            360p/index.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=2928000,AVERAGE-BANDWIDTH=2528000,\
            CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=720x1280,FRAME-RATE=29.970,AUDIO=\"audio\"\n\
            720p/index.m3u8\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn master_without_audio_declares_no_audio() {
        let text = master_playlist(&ladder(false));
        assert!(!text.contains("mp4a"));
        assert!(!text.contains("EXT-X-MEDIA:"));
        assert!(!text.contains("AUDIO="));
        assert!(text.contains("BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS=\"avc1.64001f\""));
    }

    #[test]
    fn master_for_a_chosen_order() {
        let out = ladder(false);
        let text = master_playlist_for(&out, &[0]).unwrap_or_default();
        assert!(text.contains("720p/index.m3u8"));
        assert!(!text.contains("360p/index.m3u8"));
        assert_eq!(master_playlist_for(&out, &[]), None);
        assert_eq!(master_playlist_for(&out, &[2]), None);
    }

    #[test]
    fn master_of_a_subset_declares_only_the_audio_it_uses() {
        let mut out = ladder(true);
        out.audio.push(AudioOutput { name: "audio-32k".into(), ..out.audio[0].clone() });
        out.renditions[1].audio_group = Some("audio-32k".into());
        let preview = master_playlist_of(&out, &["360p"]).unwrap_or_default();
        assert!(preview.contains("GROUP-ID=\"audio-32k\"") && preview.contains("AUDIO=\"audio-32k\""));
        assert!(!preview.contains("GROUP-ID=\"audio\""), "{preview}");
        assert!(!preview.contains("720p"));
        let full = master_playlist(&out);
        assert!(full.contains("GROUP-ID=\"audio\"") && full.contains("GROUP-ID=\"audio-32k\""));
        assert_eq!(master_playlist_of(&out, &["1080p"]), None);
        assert_eq!(master_playlist_of(&out, &[]), None);
    }

    #[test]
    fn planned_variants_declare_the_rate_control_ceiling() {
        let rung = Rung {
            name: "234p".into(),
            width: 234,
            height: 416,
            video_kbps: 130,
            maxrate_kbps: 150,
            bufsize_kbps: 150,
            audio_kbps: 32,
        };
        let muxed = Variant::planned(&rung, (30, 1), "avc1.64000d,mp4a.40.2", None);
        assert_eq!((muxed.bandwidth, muxed.average_bandwidth), (182_000, 162_000));
        let silent = Variant::planned(&rung, (30, 1), "avc1.64000d", None);
        assert_eq!(silent.bandwidth, 150_000);
        let separate = Variant::planned(&rung, (30, 1), "avc1.64000d", Some(("audio-32k", "mp4a.40.2")));
        assert_eq!(separate.codecs, "avc1.64000d,mp4a.40.2");
        let text = render_master(&[separate], &[AudioRendition { group: "audio-32k".into(), channels: 2 }]);
        assert!(text.contains("URI=\"audio-32k/index.m3u8\""));
        assert!(text.ends_with("FRAME-RATE=30.000,AUDIO=\"audio-32k\"\n234p/index.m3u8\n"), "{text}");
    }

    #[test]
    fn event_playlists_grow_and_end() {
        let segs = segments(&[10, 20]);
        let growing = event_playlist(&segs[..1], 4, false);
        assert!(growing.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS"));
        assert!(!growing.contains("ENDLIST"));
        assert_eq!(parse_media_playlist(&growing).map(|p| p.len()), Ok(1));
        let ended = event_playlist(&segs, 4, true);
        assert!(ended.starts_with(&growing), "a growing playlist only gains lines");
        assert!(ended.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n") && ended.ends_with("seg-00002.m4s\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn media_playlist_round_trips() {
        let segs = segments(&[10, 20]);
        let text = render_media_playlist(&segs, 4);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        let parsed = parse_media_playlist(&text);
        assert_eq!(parsed, Ok(vec![(4.0, "seg-00001.m4s".to_string()), (4.0, "seg-00002.m4s".to_string())]));
    }

    #[test]
    fn malformed_playlists_are_errors() {
        assert!(parse_media_playlist("#EXTM3U\n").is_err());
        assert!(parse_media_playlist("#EXTM3U\nseg.m4s\n").is_err());
        assert!(parse_media_playlist("#EXTM3U\n#EXTINF:abc,\nseg.m4s\n").is_err());
    }

    #[test]
    fn target_duration_rounds_to_nearest() {
        let mut segs = segments(&[1, 1]);
        segs[1].duration = 4.0107;
        assert_eq!(target_duration(&segs), 4);
        segs[1].duration = 4.6;
        assert_eq!(target_duration(&segs), 5);
    }
}
