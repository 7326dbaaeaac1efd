//! Test fixtures: tiny clips generated with ffmpeg lavfi, and ffprobe inspection helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::Tools;

/// Generous budget for the tools in tests (clips are tiny).
pub(crate) const BUDGET: Duration = Duration::from_secs(120);

pub(crate) fn tools() -> Tools {
    Tools::default()
}

/// Run ffmpeg synchronously; panics with its stderr on failure (tests only).
pub(crate) fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// ffprobe's JSON report for `args` (which must include the input).
pub(crate) fn ffprobe_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-hide_banner", "-v", "error", "-of", "json"])
        .args(args)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// A lavfi clip: `video` source, optional `audio` source, H.264 (+ AAC), then `extra` args.
pub(crate) fn clip(dir: &Path, name: &str, video: &str, audio: Option<&str>, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = vec!["-f", "lavfi", "-i", video];
    if let Some(audio) = audio {
        args.extend(["-f", "lavfi", "-i", audio, "-c:a", "aac", "-shortest"]);
    }
    args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]);
    args.extend(extra);
    let out = path.to_string_lossy().into_owned();
    args.push(&out);
    ffmpeg(&args);
    path
}

/// A 10-bit HEVC HLG clip tagged BT.2020.
pub(crate) fn hlg_clip(dir: &Path, size: &str) -> PathBuf {
    let path = dir.join("hlg.mp4");
    let source = format!("testsrc2=s={size}:r=30:d=1");
    let out = path.to_string_lossy().into_owned();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &source,
        "-vf",
        "format=yuv420p10le",
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "log-level=error",
        "-pix_fmt",
        "yuv420p10le",
        "-color_trc",
        "arib-std-b67",
        "-color_primaries",
        "bt2020",
        "-colorspace",
        "bt2020nc",
        "-tag:v",
        "hvc1",
        &out,
    ]);
    path
}

/// A landscape clip carrying a 90° display rotation (remuxed with `-c copy`).
pub(crate) fn rotated_clip(dir: &Path) -> PathBuf {
    let plain = clip(dir, "plain.mp4", "testsrc2=s=320x180:r=30:d=1", None, &[]);
    let path = dir.join("rotated.mp4");
    let (input, out) = (plain.to_string_lossy().into_owned(), path.to_string_lossy().into_owned());
    ffmpeg(&["-i", &input, "-c", "copy", "-metadata:s:v:0", "rotate=90", &out]);
    path
}

/// The video stream entries of ffprobe's report on `path`.
pub(crate) fn video_stream(path: &Path) -> serde_json::Value {
    let path = path.to_string_lossy().into_owned();
    let report = ffprobe_json(&["-select_streams", "v:0", "-show_streams", &path]);
    report["streams"][0].clone()
}
