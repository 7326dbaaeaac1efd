//! What a finished ladder looks like on disk, with bitrates measured from the files.

use std::path::PathBuf;

/// One media segment as listed in its playlist, with its size on disk.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegmentStat {
    /// File name relative to the rendition directory, e.g. "seg-00001.m4s".
    pub uri: String,
    /// EXTINF duration in seconds.
    pub duration: f64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

impl SegmentStat {
    fn bits_per_second(&self) -> f64 {
        if self.duration > 0.0 { self.bytes as f64 * 8.0 / self.duration } else { 0.0 }
    }
}

/// A packaged video rendition: `{dir}/index.m3u8`, `{dir}/init.mp4`, `{dir}/seg-NNNNN.m4s`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RenditionOutput {
    /// Rendition name and directory name under the output root, e.g. "720p".
    pub name: String,
    /// Absolute directory of the rendition.
    pub dir: PathBuf,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Constant frame rate (numerator, denominator).
    pub frame_rate: (u32, u32),
    /// RFC 6381 codec strings read from the init segment, e.g. "avc1.64001f" or, with audio
    /// muxed in, "avc1.64001f,mp4a.40.2".
    pub codecs: String,
    /// The separate audio rendition (group id) this rendition plays with; `None` when its audio
    /// is muxed in or the source has none.
    pub audio_group: Option<String>,
    /// The segments, in playback order.
    pub segments: Vec<SegmentStat>,
    /// Highest per-segment bitrate (bit/s) of the files, measured (audio included when muxed).
    pub peak_bps: u64,
    /// Average bitrate over all segments (bit/s), measured (audio included when muxed).
    pub average_bps: u64,
}

impl RenditionOutput {
    /// Number of media segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// The packaged audio rendition (encoded once, shared by every video rendition).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AudioOutput {
    /// Directory name under the output root and group id ("audio", "audio-32k").
    pub name: String,
    /// Absolute directory of the rendition.
    pub dir: PathBuf,
    /// RFC 6381 codec string read from the init segment: "mp4a.40.2".
    pub codecs: String,
    /// Channel count (2).
    pub channels: u32,
    /// The segments, in playback order.
    pub segments: Vec<SegmentStat>,
    /// Highest per-segment bitrate (bit/s), measured.
    pub peak_bps: u64,
    /// Average bitrate (bit/s), measured.
    pub average_bps: u64,
}

/// Everything `transcode` produced under its output directory.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LadderOutput {
    /// Video renditions, lowest first.
    pub renditions: Vec<RenditionOutput>,
    /// Separate audio renditions, lowest bitrate first (empty when audio is muxed or absent).
    pub audio: Vec<AudioOutput>,
    /// EXT-X-TARGETDURATION shared by every media playlist.
    pub target_duration: u32,
}

impl LadderOutput {
    /// The separate audio rendition with group id `name`.
    pub fn audio_group(&self, name: &str) -> Option<&AudioOutput> {
        self.audio.iter().find(|a| a.name == name)
    }

    /// This output and another phase's, as one ladder: renditions lowest first, audio renditions
    /// once each, the larger target duration.
    pub fn merge(mut self, other: LadderOutput) -> LadderOutput {
        self.renditions.extend(other.renditions);
        self.renditions.sort_by_key(|r| (r.width.min(r.height), r.peak_bps));
        self.renditions.dedup_by(|a, b| a.name == b.name);
        for audio in other.audio {
            if self.audio_group(&audio.name).is_none() {
                self.audio.push(audio);
            }
        }
        self.audio.sort_by_key(|a| a.average_bps);
        self.target_duration = self.target_duration.max(other.target_duration);
        self
    }
}

/// (peak, average) bit/s over `segments`.
pub fn measure(segments: &[SegmentStat]) -> (u64, u64) {
    let peak = segments.iter().map(SegmentStat::bits_per_second).fold(0.0, f64::max);
    let bytes: u64 = segments.iter().map(|s| s.bytes).sum();
    let seconds: f64 = segments.iter().map(|s| s.duration).sum();
    let average = if seconds > 0.0 { bytes as f64 * 8.0 / seconds } else { 0.0 };
    (peak.ceil() as u64, average.ceil() as u64)
}

/// Peak bit/s of video and audio played together: for each video segment, its rate plus the rate
/// of the audio segment playing at its midpoint.
pub(crate) fn combined_peak(video: &[SegmentStat], audio: &[SegmentStat]) -> u64 {
    let audio_spans = spans(audio);
    let mut start = 0.0;
    let mut peak: f64 = 0.0;
    for segment in video {
        let middle = start + segment.duration / 2.0;
        let audio_rate = audio_spans
            .iter()
            .find(|(s, e, _)| middle >= *s && middle < *e)
            .or(audio_spans.last())
            .map_or(0.0, |(_, _, rate)| *rate);
        peak = peak.max(segment.bits_per_second() + audio_rate);
        start += segment.duration;
    }
    peak.ceil() as u64
}

/// (start, end, bit/s) of each segment.
fn spans(segments: &[SegmentStat]) -> Vec<(f64, f64, f64)> {
    let mut start = 0.0;
    segments
        .iter()
        .map(|s| {
            let span = (start, start + s.duration, s.bits_per_second());
            start += s.duration;
            span
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(duration: f64, bytes: u64) -> SegmentStat {
        SegmentStat { uri: String::new(), duration, bytes }
    }

    #[test]
    fn peak_and_average_come_from_sizes_and_durations() {
        let (peak, average) = measure(&[seg(4.0, 500_000), seg(4.0, 300_000), seg(2.0, 100_000)]);
        assert_eq!(peak, 1_000_000);
        assert_eq!(average, 720_000);
    }

    #[test]
    fn combined_peak_adds_the_overlapping_audio_segment() {
        let video = [seg(4.0, 400_000), seg(4.0, 800_000)];
        let audio = [seg(4.0, 64_000), seg(4.0, 128_000)];
        assert_eq!(combined_peak(&video, &audio), 1_600_000 + 256_000);
    }

    #[test]
    fn empty_inputs_measure_zero() {
        assert_eq!(measure(&[]), (0, 0));
        assert_eq!(combined_peak(&[], &[seg(1.0, 10)]), 0);
    }
}
