//! Media playlists (rewritten from ffmpeg's) and the multivariant playlist (written by reel).

use std::fmt::Write as _;

use super::output::{LadderOutput, RenditionOutput, SegmentStat, combined_peak};

/// GROUP-ID of the shared audio rendition.
const AUDIO_GROUP: &str = "audio";

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
    render_playlist("VOD", segments, target_duration, true)
}

/// An `EVENT` media playlist (RFC 8216 §4.3.3.5) for fMP4 segments with `init.mp4` as the map:
/// published while the rendition is still encoding and only ever appended to, with
/// `#EXT-X-ENDLIST` once `ended`.
pub fn event_playlist(segments: &[SegmentStat], target_duration: u32, ended: bool) -> String {
    render_playlist("EVENT", segments, target_duration, ended)
}

fn render_playlist(kind: &str, segments: &[SegmentStat], target_duration: u32, ended: bool) -> String {
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

/// The multivariant playlist listing every rendition, lowest bandwidth first.
pub fn master_playlist(out: &LadderOutput) -> String {
    let mut order: Vec<usize> = (0..out.renditions.len()).collect();
    order.sort_by_key(|&i| out.renditions[i].peak_bps);
    render_master(out, &order)
}

/// The multivariant playlist listing the renditions at `order` (indices into
/// `out.renditions`), in that order: the first is where players start. `None` when `order` is
/// empty or holds an index out of range.
pub fn master_playlist_for(out: &LadderOutput, order: &[usize]) -> Option<String> {
    if order.is_empty() || order.iter().any(|&i| i >= out.renditions.len()) {
        return None;
    }
    Some(render_master(out, order))
}

fn render_master(out: &LadderOutput, order: &[usize]) -> String {
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    if let Some(audio) = &out.audio {
        let _ = writeln!(
            text,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"Main\",DEFAULT=YES,\
             AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"{}/index.m3u8\"",
            audio.channels, audio.name
        );
    }
    for rendition in order.iter().filter_map(|&i| out.renditions.get(i)) {
        text.push_str(&stream_inf(out, rendition));
    }
    text
}

fn stream_inf(out: &LadderOutput, rendition: &RenditionOutput) -> String {
    let (bandwidth, average, codecs) = match &out.audio {
        Some(audio) => (
            combined_peak(&rendition.segments, &audio.segments),
            rendition.average_bps + audio.average_bps,
            format!("{},{}", rendition.codecs, audio.codecs),
        ),
        None => (rendition.peak_bps, rendition.average_bps, rendition.codecs.clone()),
    };
    let (num, den) = rendition.frame_rate;
    let fps = f64::from(num) / f64::from(den.max(1));
    let mut line = format!(
        "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},AVERAGE-BANDWIDTH={average},\
         CODECS=\"{codecs}\",RESOLUTION={}x{},FRAME-RATE={fps:.3}",
        rendition.width, rendition.height
    );
    if out.audio.is_some() {
        let _ = write!(line, ",AUDIO=\"{AUDIO_GROUP}\"");
    }
    let _ = write!(line, "\n{}/index.m3u8\n", rendition.name);
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

    fn rendition(name: &str, width: u32, height: u32, bytes: &[u64]) -> RenditionOutput {
        let segments = segments(bytes);
        let (peak_bps, average_bps) = super::super::output::measure(&segments);
        RenditionOutput {
            name: name.into(),
            dir: PathBuf::from(name),
            width,
            height,
            frame_rate: (30000, 1001),
            codecs: "avc1.64001f".into(),
            segments,
            peak_bps,
            average_bps,
        }
    }

    fn ladder(with_audio: bool) -> LadderOutput {
        let audio = with_audio.then(|| AudioOutput {
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
                rendition("720p", 720, 1280, &[1_400_000, 1_000_000]),
                rendition("360p", 360, 640, &[400_000, 300_000]),
            ],
            audio,
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
    fn media_playlist_round_trips() {
        let segs = segments(&[10, 20]);
        let text = render_media_playlist(&segs, 4);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        let parsed = parse_media_playlist(&text);
        assert_eq!(parsed, Ok(vec![(4.0, "seg-00001.m4s".to_string()), (4.0, "seg-00002.m4s".to_string())]));
    }

    #[test]
    fn event_playlists_grow_then_end() {
        let segs = segments(&[10, 20]);
        let growing = event_playlist(&segs[..1], 4, false);
        assert!(growing.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(!growing.contains("#EXT-X-ENDLIST"));
        let ended = event_playlist(&segs, 4, true);
        assert!(ended.starts_with(&growing), "an EVENT playlist is only appended to");
        assert!(ended.ends_with("seg-00002.m4s\n#EXT-X-ENDLIST\n"));
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
