//! Ladder benchmark: reel's single-process `transcode` against a naive per-rung baseline.
//!
//! Source: 30 s, 1080×1920, 30 fps, `mandelbrot` (a continuous zoom: smooth, detailed motion)
//! rendered at 540×960, upscaled with lanczos, plus light temporal noise (sensor-like grain);
//! stereo sine audio; x264 CRF 20. Baseline: one ffmpeg per rung, each decoding the source,
//! swscale (`scale=W:H`), AAC muxed into every rung, HLS fMP4 4 s, the same x264 rate control as
//! reel. Runs alternate in pairs (B R, R B, ...); quality is per-rung SSIM of the video against
//! the source scaled with lanczos. `REEL_BENCH_PAIRS` sets the number of pairs (default 3).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reel::media::{LadderConfig, MediaLimits, ProbedMedia, Rung, Tools, plan_ladder, probe, transcode};

type Res<T> = Result<T, Box<dyn Error>>;

const SECONDS: &str = "30";

fn main() -> Res<()> {
    let pairs: usize = std::env::var("REEL_BENCH_PAIRS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let work = tempfile::tempdir()?;
    let source = work.path().join("source.mp4");
    eprintln!("generating source …");
    generate_source(&source)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let tools = Tools::default();
    let probed = runtime.block_on(probe(&tools, &source, &MediaLimits::default(), Duration::from_secs(60)))?;
    let cfg = LadderConfig::default();
    let rungs = plan_ladder(&probed, &cfg);
    let (baseline_dir, reel_dir) = (work.path().join("baseline"), work.path().join("reel"));
    let mut times = Vec::new();
    for pair in 0..pairs {
        let run_baseline = || timed(|| baseline(&source, &probed, &rungs, &baseline_dir));
        let run_reel = || timed(|| runtime.block_on(reel(&tools, &source, &probed, &rungs, &cfg, &reel_dir)));
        let (b, r) = if pair % 2 == 0 {
            let b = run_baseline()?;
            (b, run_reel()?)
        } else {
            let r = run_reel()?;
            (run_baseline()?, r)
        };
        eprintln!("pair {}: baseline {b:.1} s, reel {r:.1} s, ratio {:.3}", pair + 1, r / b);
        times.push((b, r));
    }
    report(&times, &rungs, &source, &baseline_dir, &reel_dir)
}

fn generate_source(path: &Path) -> Res<()> {
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
        SECONDS,
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

fn timed(f: impl FnOnce() -> Res<()>) -> Res<f64> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed().as_secs_f64())
}

/// One ffmpeg per rung: decode, swscale, x264, AAC, HLS fMP4.
fn baseline(source: &Path, probed: &ProbedMedia, rungs: &[Rung], out: &Path) -> Res<()> {
    let _ = std::fs::remove_dir_all(out);
    let gop = (probed.fps() * 2.0).round().to_string();
    for rung in rungs {
        let dir = out.join(&rung.name);
        std::fs::create_dir_all(&dir)?;
        run_ffmpeg(&[
            "-i",
            &lossy(source),
            "-vf",
            &format!("scale={}:{}", rung.width, rung.height),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-b:v",
            &format!("{}k", rung.video_kbps),
            "-maxrate",
            &format!("{}k", rung.maxrate_kbps),
            "-bufsize",
            &format!("{}k", rung.bufsize_kbps),
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

async fn reel(
    tools: &Tools,
    source: &Path,
    probed: &ProbedMedia,
    rungs: &[Rung],
    cfg: &LadderConfig,
    out: &Path,
) -> Res<()> {
    let _ = std::fs::remove_dir_all(out);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<PathBuf>(64);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let timeout = Duration::from_secs(1800);
    transcode(tools, source, probed, rungs, cfg, out, timeout, tx).await?;
    drain.await?;
    Ok(())
}

fn report(times: &[(f64, f64)], rungs: &[Rung], source: &Path, baseline_dir: &Path, reel_dir: &Path) -> Res<()> {
    println!("| pair | baseline (s) | reel (s) | ratio |\n|---|---|---|---|");
    for (i, (b, r)) in times.iter().enumerate() {
        println!("| {} | {b:.1} | {r:.1} | {:.3} |", i + 1, r / b);
    }
    let (sum_b, sum_r) = times.iter().fold((0.0, 0.0), |(sb, sr), (b, r)| (sb + b, sr + r));
    println!("| total | {sum_b:.1} | {sum_r:.1} | {:.3} |\n", sum_r / sum_b);
    println!("| rung | baseline SSIM | reel SSIM | delta | baseline kb/s | reel kb/s |");
    println!("|---|---|---|---|---|---|");
    for rung in rungs {
        let (b_ssim, b_kbps) = quality(source, &baseline_dir.join(&rung.name), rung)?;
        let (r_ssim, r_kbps) = quality(source, &reel_dir.join(&rung.name), rung)?;
        println!("| {} | {b_ssim:.4} | {r_ssim:.4} | {:+.4} | {b_kbps:.0} | {r_kbps:.0} |", rung.name, r_ssim - b_ssim);
    }
    Ok(())
}

/// (SSIM "All" against the lanczos-scaled source, video kb/s) of one rendition directory.
fn quality(source: &Path, dir: &Path, rung: &Rung) -> Res<(f64, f64)> {
    let joined = dir.join("joined.mp4");
    let mut bytes = std::fs::read(dir.join("init.mp4"))?;
    let playlist = std::fs::read_to_string(dir.join("index.m3u8"))?;
    for segment in playlist.lines().filter(|l| l.ends_with(".m4s")) {
        bytes.extend(std::fs::read(dir.join(segment))?);
    }
    std::fs::write(&joined, &bytes)?;
    let graph = format!(
        "[0:v]setpts=PTS-STARTPTS[d];[1:v]scale={}:{}:flags=lanczos,setpts=PTS-STARTPTS[r];\
         [d][r]ssim",
        rung.width, rung.height
    );
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(&joined)
        .arg("-i")
        .arg(source)
        .args(["-filter_complex", &graph, "-f", "null", "-"])
        .output()?;
    let log = String::from_utf8_lossy(&out.stderr);
    let ssim = log
        .rsplit("All:")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| format!("no SSIM in ffmpeg output for {}", dir.display()))?;
    let kbps = video_kbps(&joined)?;
    Ok((ssim, kbps))
}

fn video_kbps(path: &Path) -> Res<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=size", "-of", "csv=p=0"])
        .arg(path)
        .output()?;
    let bytes: f64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .sum();
    let seconds: f64 = SECONDS.parse()?;
    Ok(bytes * 8.0 / seconds / 1000.0)
}

fn run_ffmpeg(args: &[&str]) -> Res<()> {
    let out = Command::new("ffmpeg").args(["-hide_banner", "-nostdin", "-v", "error", "-y"]).args(args).output()?;
    if !out.status.success() {
        return Err(format!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
