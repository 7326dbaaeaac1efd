//! What the media benchmarks share: the synthetic source, the naive per-rung ladder they are
//! measured against, and small helpers.

use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use reel::media::{ProbedMedia, Rung};

/// The benchmarks' result type.
pub type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The synthetic phone clip: 1080×1920, 30 fps, a mandelbrot zoom upscaled with lanczos plus
/// temporal noise, stereo sine audio, x264 CRF 20.
pub fn generate_source(path: &Path, seconds: u32) -> Res<()> {
    let video = "mandelbrot=s=540x960:r=30,scale=1080:1920:flags=lanczos,noise=alls=4:allf=t";
    run_ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        video,
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=48000",
        "-t",
        &seconds.to_string(),
        "-ac",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "20",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        &lossy(path),
    ])
}

/// Wall-clock seconds of `f`.
pub fn timed(f: impl FnOnce() -> Res<()>) -> Res<f64> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed().as_secs_f64())
}

/// One ffmpeg per rung: decode, swscale, x264, AAC, HLS fMP4 4 s.
pub fn naive_ladder(source: &Path, probed: &ProbedMedia, rungs: &[Rung], out: &Path) -> Res<()> {
    let _ = std::fs::remove_dir_all(out);
    let gop = (probed.fps() * 2.0).round().to_string();
    for rung in rungs {
        let dir = out.join(&rung.name);
        std::fs::create_dir_all(&dir)?;
        let (scale, rate, maxrate, bufsize) = (
            format!("scale={}:{}", rung.width, rung.height),
            format!("{}k", rung.video_kbps),
            format!("{}k", rung.maxrate_kbps),
            format!("{}k", rung.bufsize_kbps),
        );
        run_ffmpeg(&[
            "-i",
            &lossy(source),
            "-vf",
            &scale,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-b:v",
            &rate,
            "-maxrate",
            &maxrate,
            "-bufsize",
            &bufsize,
            "-g",
            &gop,
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            "-ar",
            "48000",
            "-f",
            "hls",
            "-hls_time",
            "4",
            "-hls_playlist_type",
            "vod",
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init.mp4",
            "-hls_segment_filename",
            &lossy(&dir.join("seg-%05d.m4s")),
            &lossy(&dir.join("index.m3u8")),
        ])?;
    }
    Ok(())
}

/// Runs ffmpeg quietly, failing with its stderr.
pub fn run_ffmpeg(args: &[&str]) -> Res<()> {
    let out = Command::new("ffmpeg").args(["-hide_banner", "-nostdin", "-v", "error", "-y"]).args(args).output()?;
    if !out.status.success() {
        return Err(format!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// A path as an ffmpeg argument.
pub fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The median (the mean of the middle two for an even count; NaN when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
