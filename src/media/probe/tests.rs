use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::super::testutil::{BUDGET, clip, ffmpeg, hlg_clip, rotated_clip, tools};
use super::*;

async fn probe_default(path: &Path) -> Result<ProbedMedia, MediaError> {
    probe(&tools(), path, &MediaLimits::default(), BUDGET).await
}

/// Probe `path` and return the rejection reason, checking it came back fast.
async fn rejection(path: &Path, limits: &MediaLimits) -> String {
    let started = Instant::now();
    let result = probe(&tools(), path, limits, BUDGET).await;
    assert!(started.elapsed() < Duration::from_secs(5), "slow rejection for {}", path.display());
    match result {
        Err(MediaError::Rejected { reason }) => reason,
        other => panic!("{}: expected a rejection, got {other:?}", path.display()),
    }
}

#[tokio::test]
async fn accepts_a_portrait_clip_with_audio() -> Result<(), MediaError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = clip(tmp.path(), "portrait.mp4", "testsrc2=s=360x640:r=30:d=2", Some("sine=d=2"), &[]);
    let probed = probe_default(&path).await?;
    assert_eq!(probed.container, Container::Mp4Family);
    assert_eq!((probed.width, probed.height, probed.rotation), (360, 640, 0));
    assert_eq!(probed.frame_rate, (30, 1));
    assert!((1900..=2100).contains(&probed.duration_ms));
    assert!(probed.has_audio);
    assert_eq!(probed.audio_channels, 1);
    assert!(!probed.is_hdr);
    assert_eq!(probed.bit_depth, 8);
    assert_eq!(probed.video_codec, "h264");
    assert!(probed.video_bitrate_bps.is_some());
    Ok(())
}

#[tokio::test]
async fn reports_display_size_of_a_rotated_clip() -> Result<(), MediaError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let probed = probe_default(&rotated_clip(tmp.path())).await?;
    assert_eq!((probed.width, probed.height), (180, 320));
    assert_eq!(probed.rotation % 180, 90);
    Ok(())
}

#[tokio::test]
async fn detects_hlg_hdr() -> Result<(), MediaError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let probed = probe_default(&hlg_clip(tmp.path(), "160x284")).await?;
    assert!(probed.is_hdr);
    assert_eq!(probed.bit_depth, 10);
    assert_eq!(probed.video_codec, "hevc");
    assert!(!probed.has_audio);
    Ok(())
}

#[tokio::test]
async fn accepts_matroska_and_mpegts() -> Result<(), MediaError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source = "testsrc2=s=160x90:r=25:d=1";
    let mkv = clip(tmp.path(), "clip.mkv", source, None, &[]);
    let ts = clip(tmp.path(), "clip.ts", source, Some("sine=d=1"), &[]);
    assert_eq!(probe_default(&mkv).await?.container, Container::Matroska);
    let ts = probe_default(&ts).await?;
    assert_eq!(ts.container, Container::MpegTs);
    assert_eq!(ts.frame_rate, (25, 1));
    Ok(())
}

#[tokio::test]
async fn rejects_disguised_playlists_and_junk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write fixture");
        path
    };
    let limits = MediaLimits::default();
    let hls = write("hls.mp4", b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n/etc/passwd\n#EXT-X-ENDLIST\n");
    assert_eq!(rejection(&hls, &limits).await, "unsupported container: hls");
    let concat = write("concat.mp4", b"ffconcat version 1.0\nfile '/etc/passwd'\n");
    assert_eq!(rejection(&concat, &limits).await, "unsupported container: ffconcat");
    let text = write("notes.mp4", b"just some text, not a video at all\n");
    assert_eq!(rejection(&text, &limits).await, "not a media file");
    let empty = write("empty.mp4", b"");
    assert_eq!(rejection(&empty, &limits).await, "empty file");
    let random = write("random.mp4", &pseudo_random_bytes(64 * 1024));
    assert_eq!(rejection(&random, &limits).await, "not a media file");
}

#[tokio::test]
async fn rejects_audio_only_and_still_images() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let limits = MediaLimits::default();
    let audio = dir.join("audio.mp4");
    ffmpeg(&["-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", &lossy(&audio)]);
    assert_eq!(rejection(&audio, &limits).await, "audio only");
    for (name, codec) in [("png.mp4", "png"), ("jpeg.mp4", "mjpeg")] {
        let image = dir.join(name);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=64x64",
            "-frames:v",
            "1",
            "-c:v",
            codec,
            "-f",
            "image2",
            &lossy(&image),
        ]);
        assert_eq!(rejection(&image, &limits).await, "still image", "{name}");
    }
    let framed = dir.join("single-frame.mkv");
    ffmpeg(&["-f", "lavfi", "-i", "testsrc2=s=64x64", "-frames:v", "1", "-c:v", "png", &lossy(&framed)]);
    assert_eq!(rejection(&framed, &limits).await, "still image");
}

#[tokio::test]
async fn rejects_truncated_and_undecodable_mp4() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let limits = MediaLimits::default();
    let whole = clip(dir, "whole.mp4", "testsrc2=s=160x90:r=30:d=2", None, &[]);
    let bytes = std::fs::read(&whole).expect("read clip");
    let truncated = dir.join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let reason = rejection(&truncated, &limits).await;
    assert_eq!(reason, "truncated or corrupt file: moov atom not found");
    let blanked = dir.join("blanked.mp4");
    std::fs::write(&blanked, zero_mdat(bytes)).expect("write");
    assert_eq!(rejection(&blanked, &limits).await, "no decodable video frame");
}

#[tokio::test]
async fn rejects_a_container_without_video() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srt = tmp.path().join("subs.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nhello\n").expect("write");
    let mkv = tmp.path().join("subs.mkv");
    ffmpeg(&["-i", &lossy(&srt), &lossy(&mkv)]);
    let reason = rejection(&mkv, &MediaLimits::default()).await;
    assert_eq!(reason, "no video stream");
}

#[tokio::test]
async fn enforces_duration_and_size_limits() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = clip(tmp.path(), "c.mp4", "testsrc2=s=360x640:r=30:d=2", None, &[]);
    let short = MediaLimits { max_duration: Duration::from_secs(1), ..MediaLimits::default() };
    assert_eq!(rejection(&path, &short).await, "duration 2s exceeds limit 1s");
    let small = MediaLimits { max_side: 300, ..MediaLimits::default() };
    assert_eq!(rejection(&path, &small).await, "resolution 360x640 exceeds limit 300");
}

#[tokio::test]
async fn rejects_an_extreme_sample_aspect_ratio() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = clip(tmp.path(), "sar.mp4", "testsrc2=s=320x240:r=30:d=1,setsar=1/15", None, &[]);
    let reason = rejection(&path, &MediaLimits::default()).await;
    assert_eq!(reason, "sample aspect ratio 1:15 is outside 1:4 to 4:1");
}

#[test]
fn bounds_the_coded_picture_not_only_the_displayed_one() {
    let report = |w: u32, h: u32, sar: &str| -> ProbeReport {
        let json = format!(
            r#"{{"streams": [{{"index": 0, "codec_type": "video", "codec_name": "h264", "width": {w}, "height": {h},
                "sample_aspect_ratio": "{sar}", "avg_frame_rate": "30/1", "duration": "1.0"}}],
                "format": {{"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "1.0"}}}}"#
        );
        serde_json::from_str(&json).expect("report")
    };
    let limits = MediaLimits::default();
    let reason = |w, h, sar| match interpret(&report(w, h, sar), &limits) {
        Err(MediaError::Rejected { reason }) => reason,
        other => panic!("{w}x{h} {sar}: expected a rejection, got {other:?}"),
    };
    assert_eq!(reason(60000, 4096, "1:15"), "coded resolution 60000x4096 exceeds limit 4096");
    assert_eq!(reason(4096, 4096, "1:1"), "coded resolution 4096x4096 exceeds 9437184 pixels per frame");
    assert_eq!(reason(1920, 1080, "5:1"), "resolution 9600x1080 exceeds limit 4096");
    assert_eq!(reason(640, 360, "9:2"), "sample aspect ratio 9:2 is outside 1:4 to 4:1");
    assert!(interpret(&report(3840, 2160, "1:1"), &limits).is_ok());
    assert!(interpret(&report(1440, 1080, "4:3"), &limits).is_ok());
}

#[test]
fn human_durations() {
    assert_eq!(human_duration(Duration::from_secs(4 * 3600)), "4h0m");
    assert_eq!(human_duration(Duration::from_secs(600)), "10m");
    assert_eq!(human_duration(Duration::from_secs(630)), "10m30s");
    assert_eq!(human_duration(Duration::from_secs(45)), "45s");
}

#[test]
fn frame_rates_are_snapped_and_capped() {
    let rate =
        |avg: &str| choose_frame_rate(&StreamReport { avg_frame_rate: Some(avg.into()), ..StreamReport::default() });
    assert_eq!(rate("30/1"), (30, 1));
    assert_eq!(rate("5400/181"), (30000, 1001));
    assert_eq!(rate("120/1"), (60, 1));
    assert_eq!(rate("0/0"), (30, 1));
    assert_eq!(rate("20/1"), (20, 1));
}

/// An HLS playlist or ffconcat script disguised as .mp4 must not open what it references.
/// The reference is a FIFO: opening it for reading releases a writer thread waiting on it, so
/// any open is observed. The unguarded control run shows the detector works.
#[tokio::test]
async fn disguised_playlists_open_no_other_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    for (name, script) in [
        ("hls.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n{fifo}\n#EXT-X-ENDLIST\n"),
        ("concat.mp4", "ffconcat version 1.0\nfile '{fifo}'\n"),
    ] {
        let fifo = dir.join(format!("{name}.secret.ts"));
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
        assert!(status.success());
        let disguised = dir.join(name);
        let body = script.replace("{fifo}", &lossy(&fifo));
        std::fs::File::create(&disguised).and_then(|mut f| f.write_all(body.as_bytes())).expect("write fixture");

        let guarded = FifoWatch::new(&fifo);
        let result = probe_default(&disguised).await;
        assert!(matches!(result, Err(MediaError::Rejected { .. })), "{result:?}");
        assert!(!guarded.release(), "{name}: probe opened the referenced file");

        let control = FifoWatch::new(&fifo);
        let _ = std::process::Command::new("ffprobe").args(["-v", "quiet", "-safe", "0"]).arg(&disguised).output();
        assert!(control.release(), "{name}: unguarded ffprobe should open it");
    }
}

/// A writer blocked on opening a FIFO; it unblocks when anyone opens the FIFO for reading.
struct FifoWatch {
    fifo: PathBuf,
    opened_by_other: Arc<AtomicBool>,
    releasing: Arc<AtomicBool>,
    writer: std::thread::JoinHandle<()>,
}

impl FifoWatch {
    fn new(fifo: &Path) -> Self {
        let opened_by_other = Arc::new(AtomicBool::new(false));
        let releasing = Arc::new(AtomicBool::new(false));
        let writer = {
            let (fifo, opened, releasing) = (fifo.to_path_buf(), opened_by_other.clone(), releasing.clone());
            std::thread::spawn(move || {
                if std::fs::OpenOptions::new().write(true).open(&fifo).is_ok() && !releasing.load(Ordering::SeqCst) {
                    opened.store(true, Ordering::SeqCst);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        Self { fifo: fifo.to_path_buf(), opened_by_other, releasing, writer }
    }

    /// Unblock the writer (if still waiting) and say whether someone else opened the FIFO.
    fn release(self) -> bool {
        std::thread::sleep(Duration::from_millis(100));
        let already = self.opened_by_other.load(Ordering::SeqCst) || self.writer.is_finished();
        self.releasing.store(true, Ordering::SeqCst);
        if !self.writer.is_finished() {
            let _reader = std::fs::File::open(&self.fifo);
            let _ = self.writer.join();
        }
        already
    }
}

fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn pseudo_random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u8
        })
        .collect()
}

/// The same MP4 with the payload of its `mdat` box zeroed: structure intact, no picture data.
fn zero_mdat(mut bytes: Vec<u8>) -> Vec<u8> {
    let mut offset = 0;
    while offset + 8 <= bytes.len() {
        let size =
            u32::from_be_bytes([bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]]) as usize;
        if &bytes[offset + 4..offset + 8] == b"mdat" {
            let end = (offset + size).min(bytes.len());
            bytes[offset + 8..end].fill(0);
            break;
        }
        if size < 8 {
            break;
        }
        offset += size;
    }
    bytes
}
