//! Safe inspection of an upload with ffprobe: container allow-list, stream checks, limits.
//!
//! ffprobe only ever reads the upload itself: `-protocol_whitelist file` stops it from reaching
//! the network, and `-format_whitelist` keeps every demuxer that follows references (hls, concat,
//! image sequences, ...) from being opened at all. The mov demuxer's external data references
//! (`enable_drefs`) stay at their default, off.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::Tools;
use super::error::MediaError;
use super::process::Invocation;

/// Demuxers an upload may use, as ffprobe's `format_whitelist` spells them.
const ALLOWED_DEMUXERS: &str = "mov,matroska,mpegts";
/// ffprobe's JSON for a sane file is a few KiB; more means a hostile stream count.
const PROBE_OUTPUT_LIMIT: usize = 1 << 20;
/// Enough stderr to hold the demuxer detection lines of a file that failed to open.
const IDENTIFY_STDERR_LIMIT: usize = 64 * 1024;
/// Frame rates a variable or odd source rate snaps to when within 1 %.
const STANDARD_RATES: [(u32, u32); 11] = [
    (12, 1),
    (15, 1),
    (24000, 1001),
    (24, 1),
    (25, 1),
    (30000, 1001),
    (30, 1),
    (48, 1),
    (50, 1),
    (60000, 1001),
    (60, 1),
];
/// Highest output frame rate.
const MAX_FPS: u32 = 60;

/// Upper bounds an upload must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    /// Longest accepted duration.
    pub max_duration: Duration,
    /// Longest accepted side of the displayed picture, in pixels; the coded picture (before the
    /// sample aspect ratio) is held to it too.
    pub max_side: u32,
    /// Most coded pixels per frame (width × height as stored).
    pub max_pixels: u64,
    /// Widest sample aspect ratio accepted, either way: `n` allows `1:n` to `n:1`.
    pub max_sar: u32,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self { max_duration: Duration::from_secs(10 * 60), max_side: 4096, max_pixels: 4096 * 2304, max_sar: 4 }
    }
}

/// The accepted container families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// MP4 / QuickTime / 3GP.
    Mp4Family,
    /// Matroska / WebM.
    Matroska,
    /// MPEG transport stream.
    MpegTs,
}

impl Container {
    /// The ffmpeg demuxer every later read of the upload is pinned to (`-f`).
    pub fn demuxer(self) -> &'static str {
        match self {
            Self::Mp4Family => "mov",
            Self::Matroska => "matroska",
            Self::MpegTs => "mpegts",
        }
    }

    fn from_format_name(name: &str) -> Option<Self> {
        let first = name.split(',').next().unwrap_or_default();
        match first {
            "mov" => Some(Self::Mp4Family),
            "matroska" => Some(Self::Matroska),
            "mpegts" => Some(Self::MpegTs),
            _ => None,
        }
    }
}

/// Colour description of the source video, as ffprobe names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceColor {
    /// Matrix coefficients, e.g. "bt709", "bt2020nc".
    pub matrix: Option<String>,
    /// Transfer characteristics, e.g. "bt709", "arib-std-b67", "smpte2084".
    pub transfer: Option<String>,
    /// Colour primaries, e.g. "bt709", "bt2020".
    pub primaries: Option<String>,
    /// Full ("pc"/JPEG) rather than limited ("tv") range.
    pub full_range: bool,
}

/// What an accepted upload contains, with the decisions the ladder depends on already made.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbedMedia {
    /// Container family (decides the pinned demuxer).
    pub container: Container,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Displayed width: after rotation and sample aspect ratio.
    pub width: u32,
    /// Displayed height: after rotation and sample aspect ratio.
    pub height: u32,
    /// Rotation of the display matrix in degrees, normalised to 0, 90, 180 or 270.
    pub rotation: i32,
    /// Absolute index of the video stream used.
    pub video_stream: usize,
    /// Codec of that stream, e.g. "h264", "hevc".
    pub video_codec: String,
    /// Bits per component of the decoded video.
    pub bit_depth: u8,
    /// Transfer is HLG (`arib-std-b67`) or PQ (`smpte2084`).
    pub is_hdr: bool,
    /// Colour description of the video.
    pub color: SourceColor,
    /// Constant output frame rate chosen for the ladder: source average, snapped, at most 60.
    pub frame_rate: (u32, u32),
    /// Video bitrate the source carries, when the container says.
    pub video_bitrate_bps: Option<u64>,
    /// Absolute index of the audio stream used, if any.
    pub audio_stream: Option<usize>,
    /// Whether there is an audio stream.
    pub has_audio: bool,
    /// Channel count of that audio stream (0 without audio).
    pub audio_channels: u32,
}

impl ProbedMedia {
    /// Duration as a `Duration`.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }

    /// Frame rate as a float.
    pub fn fps(&self) -> f64 {
        f64::from(self.frame_rate.0) / f64::from(self.frame_rate.1)
    }
}

/// Inspect `input` and decide whether it is an acceptable upload.
///
/// Fails with `MediaError::Rejected` (specific reason) for anything that is not a single video in
/// an allowed container within `limits`; the whole inspection is bounded by `timeout`.
pub async fn probe(
    tools: &Tools,
    input: &Path,
    limits: &MediaLimits,
    timeout: Duration,
) -> Result<ProbedMedia, MediaError> {
    let deadline = Instant::now() + timeout;
    ensure_not_empty(input).await?;
    let report = read_report(tools, input, deadline, timeout).await?;
    let probed = interpret(&report, limits)?;
    check_frames(tools, input, &probed, deadline, timeout).await?;
    Ok(probed)
}

/// `file:` prefix so a path can never be read as another protocol or an option.
pub(crate) fn file_url(path: &Path) -> std::ffi::OsString {
    let mut url = std::ffi::OsString::from("file:");
    url.push(path.as_os_str());
    url
}

async fn ensure_not_empty(input: &Path) -> Result<(), MediaError> {
    let meta = tokio::fs::metadata(input).await.map_err(MediaError::io(format!("reading {}", input.display())))?;
    if !meta.is_file() {
        return Err(MediaError::rejected("not a regular file"));
    }
    if meta.len() == 0 {
        return Err(MediaError::rejected("empty file"));
    }
    Ok(())
}

fn ffprobe(tools: &Tools, label: &str) -> Invocation {
    Invocation::new(&tools.ffprobe, label, tools.limits).args([
        "-hide_banner",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ALLOWED_DEMUXERS,
    ])
}

async fn read_report(
    tools: &Tools,
    input: &Path,
    deadline: Instant,
    budget: Duration,
) -> Result<ProbeReport, MediaError> {
    let done = ffprobe(tools, "probe")
        .args(["-v", "error", "-show_format", "-show_streams", "-of", "json", "-i"])
        .arg(file_url(input))
        .capture_stdout(PROBE_OUTPUT_LIMIT)
        .spawn()?
        .wait_until(deadline, budget)
        .await?;
    if !done.status.success() {
        return Err(identify_failure(tools, input, &done.stderr_tail, deadline, budget).await);
    }
    if done.stdout_truncated {
        return Err(MediaError::rejected("too many streams"));
    }
    serde_json::from_slice(&done.stdout).map_err(|e| MediaError::Failed {
        command: done.label,
        status: done.status.to_string(),
        stderr_tail: format!("unparseable ffprobe JSON: {e}"),
    })
}

/// ffprobe refused the file: ask it (verbosely, still whitelisted) which demuxer it detected,
/// so the rejection names the real problem.
async fn identify_failure(
    tools: &Tools,
    input: &Path,
    probe_stderr: &str,
    deadline: Instant,
    budget: Duration,
) -> MediaError {
    let identified = ffprobe(tools, "identify")
        .args(["-v", "debug", "-i"])
        .arg(file_url(input))
        .stderr_tail(IDENTIFY_STDERR_LIMIT)
        .spawn();
    let done = match identified {
        Ok(running) => running.wait_until(deadline, budget).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(done) => MediaError::rejected(rejection_reason(&done.stderr_tail, probe_stderr)),
        Err(e) => e,
    }
}

/// Turn ffprobe's demuxer detection log into a specific rejection reason.
fn rejection_reason(debug_log: &str, error_log: &str) -> String {
    if debug_log.contains("detected only with low score") {
        return "not a media file".into();
    }
    let Some(format) = detected_format(debug_log) else {
        return "not a media file".into();
    };
    if Container::from_format_name(format).is_some() {
        return match first_error(error_log) {
            Some(detail) => format!("truncated or corrupt file: {detail}"),
            None => "truncated or corrupt file".into(),
        };
    }
    match format {
        "image2" | "apng" => "still image".into(),
        f if f.ends_with("_pipe") => "still image".into(),
        "concat" => "unsupported container: ffconcat".into(),
        "tty" => "not a media file".into(),
        other => format!("unsupported container: {other}"),
    }
}

/// Name from a line like `[hls @ 0x..] Format hls probed with size=2048 and score=100`.
fn detected_format(log: &str) -> Option<&str> {
    log.lines()
        .filter_map(|line| line.split_once("Format ").map(|(_, rest)| rest))
        .find_map(|rest| rest.split_once(" probed with size="))
        .map(|(name, _)| name)
}

/// The message of the first `[demuxer @ 0x..] message` line.
fn first_error(log: &str) -> Option<String> {
    log.lines()
        .filter(|line| line.starts_with('['))
        .find_map(|line| line.split_once("] "))
        .map(|(_, message)| message.trim().chars().take(200).collect())
}

fn interpret(report: &ProbeReport, limits: &MediaLimits) -> Result<ProbedMedia, MediaError> {
    let format = report.format.as_ref().ok_or_else(|| MediaError::rejected("not a media file"))?;
    let container = Container::from_format_name(&format.format_name)
        .ok_or_else(|| MediaError::rejected(format!("unsupported container: {}", format.format_name)))?;
    let video = pick_video(report)?;
    // An audio stream ffprobe cannot name has no decoder: treat the upload as silent.
    let audio = report.streams.iter().find(|s| s.is("audio") && s.codec_name.is_some());
    let (width, height, rotation) = display_geometry(video)?;
    check_side(width, height, limits)?;
    check_coded(video, limits)?;
    let duration_ms = duration_ms(format, video)?;
    check_duration(duration_ms, limits)?;
    Ok(ProbedMedia {
        container,
        duration_ms,
        width,
        height,
        rotation,
        video_stream: video.index,
        video_codec: video.codec_name.clone().unwrap_or_default(),
        bit_depth: bit_depth(video),
        is_hdr: matches!(video.color_transfer.as_deref(), Some("arib-std-b67" | "smpte2084")),
        color: source_color(video),
        frame_rate: choose_frame_rate(video),
        video_bitrate_bps: video_bitrate(format, video, audio),
        audio_stream: audio.map(|a| a.index),
        has_audio: audio.is_some(),
        audio_channels: audio.and_then(|a| a.channels).unwrap_or(0),
    })
}

fn pick_video(report: &ProbeReport) -> Result<&StreamReport, MediaError> {
    let video = report.streams.iter().find(|s| s.is("video") && !s.is_attached_picture());
    match video {
        Some(video) => Ok(video),
        None if report.streams.iter().any(|s| s.is("audio")) => Err(MediaError::rejected("audio only")),
        None => Err(MediaError::rejected("no video stream")),
    }
}

/// Displayed (width, height, rotation): sample aspect ratio applied, sides swapped for 90/270.
fn display_geometry(video: &StreamReport) -> Result<(u32, u32, i32), MediaError> {
    let (coded_w, coded_h) = match (video.width, video.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(MediaError::rejected("video stream has no picture size")),
    };
    let width = match parse_ratio(video.sample_aspect_ratio.as_deref(), ':') {
        Some((n, d)) if n != d => scale_u32(coded_w, n, d),
        _ => coded_w,
    };
    let rotation = rotation(video);
    if rotation % 180 == 90 { Ok((coded_h, width, rotation)) } else { Ok((width, coded_h, rotation)) }
}

fn scale_u32(value: u32, num: u32, den: u32) -> u32 {
    let scaled = u64::from(value) * u64::from(num) / u64::from(den).max(1);
    u32::try_from(scaled).unwrap_or(u32::MAX)
}

/// Display-matrix rotation (or the legacy `rotate` tag), rounded to a quarter turn.
fn rotation(video: &StreamReport) -> i32 {
    let from_matrix = video.side_data_list.iter().find_map(|sd| sd.rotation);
    let from_tag = video.tags.as_ref().and_then(|t| t.rotate.as_deref()).and_then(|r| r.trim().parse::<f64>().ok());
    let degrees = from_matrix.or(from_tag).unwrap_or(0.0);
    if !degrees.is_finite() {
        return 0;
    }
    let quarter_turns = (degrees / 90.0).round().rem_euclid(4.0);
    // rem_euclid keeps this in 0..4, so the cast is exact.
    quarter_turns as i32 * 90
}

fn check_side(width: u32, height: u32, limits: &MediaLimits) -> Result<(), MediaError> {
    if width.max(height) > limits.max_side {
        return Err(MediaError::rejected(format!("resolution {width}x{height} exceeds limit {}", limits.max_side)));
    }
    Ok(())
}

/// Bounds the picture as stored: a coded 60000×4096 frame with SAR 1:15 displays within
/// `max_side` but costs a decoder the full coded size.
fn check_coded(video: &StreamReport, limits: &MediaLimits) -> Result<(), MediaError> {
    let (w, h) = (video.width.unwrap_or_default(), video.height.unwrap_or_default());
    if w.max(h) > limits.max_side {
        return Err(MediaError::rejected(format!("coded resolution {w}x{h} exceeds limit {}", limits.max_side)));
    }
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(MediaError::rejected(format!(
            "coded resolution {w}x{h} exceeds {} pixels per frame",
            limits.max_pixels
        )));
    }
    if let Some((n, d)) = parse_ratio(video.sample_aspect_ratio.as_deref(), ':') {
        let max = u64::from(limits.max_sar);
        if u64::from(n) > max * u64::from(d) || u64::from(d) > max * u64::from(n) {
            return Err(MediaError::rejected(format!(
                "sample aspect ratio {n}:{d} is outside 1:{0} to {0}:1",
                limits.max_sar
            )));
        }
    }
    Ok(())
}

fn duration_ms(format: &FormatReport, video: &StreamReport) -> Result<u64, MediaError> {
    let seconds = parse_seconds(format.duration.as_deref())
        .or_else(|| parse_seconds(video.duration.as_deref()))
        .ok_or_else(|| MediaError::rejected("unknown duration"))?;
    // Finite and positive (checked by parse_seconds); saturating float-to-int cast.
    Ok((seconds * 1000.0).round() as u64)
}

fn parse_seconds(text: Option<&str>) -> Option<f64> {
    text?.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0)
}

fn check_duration(duration_ms: u64, limits: &MediaLimits) -> Result<(), MediaError> {
    let duration = Duration::from_millis(duration_ms);
    if duration > limits.max_duration {
        return Err(MediaError::rejected(format!(
            "duration {} exceeds limit {}",
            human_duration(duration),
            human_duration(limits.max_duration)
        )));
    }
    Ok(())
}

/// "4h0m", "10m", "10m30s", "45s".
fn human_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    match (hours, minutes, seconds) {
        (h, m, _) if h > 0 => format!("{h}h{m}m"),
        (_, m, 0) if m > 0 => format!("{m}m"),
        (_, m, s) if m > 0 => format!("{m}m{s}s"),
        (_, _, s) => format!("{s}s"),
    }
}

fn bit_depth(video: &StreamReport) -> u8 {
    let raw = video.bits_per_raw_sample.as_deref().and_then(|b| b.parse::<u8>().ok()).filter(|b| *b > 0);
    raw.unwrap_or_else(|| match video.pix_fmt.as_deref() {
        Some(p) if p.contains("p10") => 10,
        Some(p) if p.contains("p12") => 12,
        _ => 8,
    })
}

fn source_color(video: &StreamReport) -> SourceColor {
    let known = |v: &Option<String>| v.clone().filter(|s| s != "unknown" && s != "reserved");
    SourceColor {
        matrix: known(&video.color_space),
        transfer: known(&video.color_transfer),
        primaries: known(&video.color_primaries),
        full_range: video.color_range.as_deref() == Some("pc")
            || video.pix_fmt.as_deref().is_some_and(|p| p.starts_with("yuvj")),
    }
}

/// Source average rate (or the stream's base rate), snapped to a standard rate, at most 60.
fn choose_frame_rate(video: &StreamReport) -> (u32, u32) {
    let rate =
        parse_ratio(video.avg_frame_rate.as_deref(), '/').or_else(|| parse_ratio(video.r_frame_rate.as_deref(), '/'));
    let Some((num, den)) = rate else {
        return (30, 1);
    };
    let fps = f64::from(num) / f64::from(den);
    if fps >= f64::from(MAX_FPS) {
        return (MAX_FPS, 1);
    }
    if fps < 1.0 {
        return (1, 1);
    }
    let distance = |&(n, d): &(u32, u32)| {
        let standard = f64::from(n) / f64::from(d);
        (fps - standard).abs() / standard
    };
    let nearest = STANDARD_RATES.iter().copied().min_by(|a, b| distance(a).total_cmp(&distance(b)));
    let snapped = nearest.filter(|rate| distance(rate) <= 0.01);
    snapped.unwrap_or_else(|| reduce((fps * 1000.0).round() as u32, 1000))
}

fn reduce(num: u32, den: u32) -> (u32, u32) {
    let (mut a, mut b) = (num, den);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let g = a.max(1);
    (num / g, den / g)
}

fn parse_ratio(text: Option<&str>, separator: char) -> Option<(u32, u32)> {
    let (num, den) = text?.split_once(separator)?;
    let num = num.trim().parse::<u32>().ok()?;
    let den = den.trim().parse::<u32>().ok()?;
    (num > 0 && den > 0).then_some((num, den))
}

fn video_bitrate(format: &FormatReport, video: &StreamReport, audio: Option<&StreamReport>) -> Option<u64> {
    let parse = |v: &Option<String>| v.as_deref().and_then(|b| b.parse::<u64>().ok());
    parse(&video.bit_rate).filter(|b| *b > 0).or_else(|| {
        let total = parse(&format.bit_rate)?;
        let audio = audio.and_then(|a| parse(&a.bit_rate)).unwrap_or(0);
        Some(total.saturating_sub(audio)).filter(|b| *b > 0)
    })
}

/// Decode the first packets of the chosen video stream with the demuxer pinned: at least one
/// frame must come out, and a single-picture stream is a still image, not a video.
async fn check_frames(
    tools: &Tools,
    input: &Path,
    probed: &ProbedMedia,
    deadline: Instant,
    budget: Duration,
) -> Result<(), MediaError> {
    let done = ffprobe(tools, "decode check")
        .args(["-v", "error", "-f", probed.container.demuxer()])
        .args(["-select_streams", &probed.video_stream.to_string()])
        .args(["-read_intervals", "%+#2", "-count_frames", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_frames,nb_read_packets"])
        .args(["-of", "json", "-i"])
        .arg(file_url(input))
        .capture_stdout(PROBE_OUTPUT_LIMIT)
        .spawn()?
        .wait_until(deadline, budget)
        .await?;
    if !done.status.success() {
        return Err(MediaError::rejected("no decodable video frame"));
    }
    let report: ProbeReport =
        serde_json::from_slice(&done.stdout).map_err(|_| MediaError::rejected("no decodable video frame"))?;
    let stream = report.streams.first();
    let count = |v: Option<&String>| v.and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    let frames = count(stream.and_then(|s| s.nb_read_frames.as_ref()));
    let packets = count(stream.and_then(|s| s.nb_read_packets.as_ref()));
    match (frames, packets) {
        (0, _) => Err(MediaError::rejected("no decodable video frame")),
        (_, 1) => Err(MediaError::rejected("still image")),
        _ => Ok(()),
    }
}

/// The parts of ffprobe's JSON report the engine reads.
#[derive(Debug, Deserialize)]
struct ProbeReport {
    #[serde(default)]
    streams: Vec<StreamReport>,
    format: Option<FormatReport>,
}

#[derive(Debug, Deserialize)]
struct FormatReport {
    format_name: String,
    duration: Option<String>,
    bit_rate: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct StreamReport {
    #[serde(default)]
    index: usize,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sample_aspect_ratio: Option<String>,
    pix_fmt: Option<String>,
    bits_per_raw_sample: Option<String>,
    color_range: Option<String>,
    color_space: Option<String>,
    color_transfer: Option<String>,
    color_primaries: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
    channels: Option<u32>,
    nb_read_frames: Option<String>,
    nb_read_packets: Option<String>,
    disposition: Option<Disposition>,
    tags: Option<StreamTags>,
    #[serde(default)]
    side_data_list: Vec<SideData>,
}

impl StreamReport {
    fn is(&self, kind: &str) -> bool {
        self.codec_type.as_deref() == Some(kind)
    }

    fn is_attached_picture(&self) -> bool {
        self.disposition.as_ref().is_some_and(|d| d.attached_pic == 1)
    }
}

#[derive(Debug, Deserialize)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Debug, Deserialize)]
struct StreamTags {
    rotate: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SideData {
    rotation: Option<f64>,
}

#[cfg(test)]
mod tests;
