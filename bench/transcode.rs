//! Ladder benchmark: reel's `transcode`, in one process or in two phases (start rungs first),
//! against a naive per-rung baseline.
//!
//! Source: 30 s, 1080×1920, 30 fps, `mandelbrot` (a continuous zoom: smooth, detailed motion)
//! rendered at 540×960, upscaled with lanczos, plus light temporal noise (sensor-like grain);
//! stereo sine audio; x264 CRF 20. Baseline: one ffmpeg per rung, each decoding the source,
//! swscale (`scale=W:H`), AAC muxed into every rung, HLS fMP4 4 s, the same x264 rate control as
//! reel. Each pair runs the baseline and every variant (today's one-process settings, the new
//! ladder in one process, in two processes, and in two processes with separate audio),
//! alternating which goes first. Per variant: time to the first start-rung segment on disk, to
//! the end of the start rungs, and to the whole ladder. Quality is per-rung SSIM of the video
//! against the source scaled with lanczos. `REEL_BENCH_PAIRS` sets the number of pairs
//! (default 3).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reel::media::{
    AudioPackaging, LadderConfig, MediaLimits, ProbedMedia, Rung, Tools, master_playlist, plan_ladder, plan_phases,
    probe, transcode,
};

use common::{Res, generate_source, median, naive_ladder as baseline, timed};

const SECONDS: u32 = 30;

/// One way of encoding the ladder, timed.
struct Variant {
    label: &'static str,
    cfg: LadderConfig,
    /// `false`: one ffmpeg for the whole ladder; `true`: the start rungs, then the rest.
    two_phases: bool,
}

/// What one run of a variant measured (seconds from its start).
#[derive(Default, Clone, Copy)]
struct Timing {
    first_start_segment: f64,
    start_rungs_done: f64,
    whole: f64,
}

fn variants() -> Vec<Variant> {
    let today = LadderConfig {
        graduated_start: false,
        audio: AudioPackaging::Separate,
        ..LadderConfig::default().without_cellular_floor()
    };
    vec![
        Variant { label: "today: one process, 3 rungs, 4 s, separate audio", cfg: today, two_phases: false },
        Variant { label: "new ladder, one process", cfg: LadderConfig::default(), two_phases: false },
        Variant {
            label: "new ladder, two processes (start rungs first)",
            cfg: LadderConfig::default(),
            two_phases: true,
        },
        Variant {
            label: "new ladder, two processes, separate audio",
            cfg: LadderConfig { audio: AudioPackaging::Separate, ..LadderConfig::default() },
            two_phases: true,
        },
    ]
}

fn main() -> Res<()> {
    let pairs: usize = std::env::var("REEL_BENCH_PAIRS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let work = tempfile::tempdir()?;
    let source = work.path().join("source.mp4");
    eprintln!("generating source …");
    generate_source(&source, SECONDS)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let tools = Tools::default();
    let probed = runtime.block_on(probe(&tools, &source, &MediaLimits::default(), Duration::from_secs(60)))?;
    let baseline_rungs = plan_ladder(&probed, &LadderConfig::default().without_cellular_floor());
    let variants = variants();
    let baseline_dir = work.path().join("baseline");
    let dirs: Vec<PathBuf> = (0..variants.len()).map(|i| work.path().join(format!("v{i}"))).collect();
    let mut rows: Vec<(f64, Vec<Timing>)> = Vec::new();
    for pair in 0..pairs {
        let run_baseline = || timed(|| baseline(&source, &probed, &baseline_rungs, &baseline_dir));
        let run_variants = || -> Res<Vec<Timing>> {
            let mut timings = Vec::new();
            for (variant, dir) in variants.iter().zip(&dirs) {
                timings.push(runtime.block_on(run(&tools, &source, &probed, variant, dir))?);
            }
            Ok(timings)
        };
        let (b, timings) = if pair % 2 == 0 {
            let b = run_baseline()?;
            (b, run_variants()?)
        } else {
            let timings = run_variants()?;
            (run_baseline()?, timings)
        };
        let wholes: Vec<String> = timings.iter().map(|t| format!("{:.1}", t.whole)).collect();
        eprintln!("pair {}: baseline {b:.1} s, variants {}", pair + 1, wholes.join(" / "));
        rows.push((b, timings));
    }
    report(&rows, &variants, &baseline_rungs, &source, &baseline_dir, &dirs)
}

/// Runs one variant into `out`, timing the first start-rung segment on disk, the end of the
/// start rungs and the end of the whole ladder.
async fn run(tools: &Tools, source: &Path, probed: &ProbedMedia, variant: &Variant, out: &Path) -> Res<Timing> {
    let _ = std::fs::remove_dir_all(out);
    let plan = plan_phases(probed, &variant.cfg);
    let start_dirs: Vec<PathBuf> = plan.start.iter().map(|r| out.join(&r.name)).collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<PathBuf>(256);
    let started = Instant::now();
    let first = tokio::spawn(async move {
        let mut first = None;
        while let Some(path) = rx.recv().await {
            let is_segment = path.extension().is_some_and(|e| e == "m4s");
            if first.is_none() && is_segment && path.parent().is_some_and(|p| start_dirs.iter().any(|d| d == p)) {
                first = Some(started.elapsed().as_secs_f64());
            }
        }
        first
    });
    let timeout = Duration::from_secs(1800);
    let cfg = &variant.cfg;
    let (start_rungs_done, ladder) = if variant.two_phases {
        let start = transcode(tools, source, probed, &plan.start_phase(cfg), cfg, out, timeout, tx.clone()).await?;
        let done = started.elapsed().as_secs_f64();
        let rest = transcode(tools, source, probed, &plan.remaining_phase(), cfg, out, timeout, tx).await?;
        (done, start.merge(rest))
    } else {
        let ladder = transcode(tools, source, probed, &plan.single_phase(cfg), cfg, out, timeout, tx).await?;
        (started.elapsed().as_secs_f64(), ladder)
    };
    let whole = started.elapsed().as_secs_f64();
    std::fs::write(out.join("master.m3u8"), master_playlist(&ladder))?;
    let first_start_segment = first.await?.ok_or("no start-rung segment reported")?;
    Ok(Timing { first_start_segment, start_rungs_done, whole })
}

fn report(
    rows: &[(f64, Vec<Timing>)],
    variants: &[Variant],
    rungs: &[Rung],
    source: &Path,
    baseline_dir: &Path,
    dirs: &[PathBuf],
) -> Res<()> {
    println!("Per pair, seconds (first start-rung segment on disk / start rungs done / whole ladder):\n");
    print!("| pair | baseline (s) |");
    for v in variants {
        print!(" {} |", v.label);
    }
    println!("\n|---|---|{}", "---|".repeat(variants.len()));
    for (i, (b, timings)) in rows.iter().enumerate() {
        print!("| {} | {b:.1} |", i + 1);
        for t in timings {
            print!(" {:.2} / {:.1} / {:.1} |", t.first_start_segment, t.start_rungs_done, t.whole);
        }
        println!();
    }
    println!("\nMedians, and ratios to the baseline of the same pair (median of the per-pair ratios):\n");
    println!(
        "| variant | first start segment (s) | start rungs done (s) | whole ladder (s) | whole / baseline | start rungs / baseline |"
    );
    println!("|---|---|---|---|---|---|");
    let baseline_median = median(rows.iter().map(|r| r.0).collect());
    println!("| naive baseline (one ffmpeg per rung, 3 rungs) | | | {baseline_median:.1} | 1.000 | |");
    for (i, v) in variants.iter().enumerate() {
        let col = |f: fn(&Timing) -> f64| median(rows.iter().map(|(_, t)| f(&t[i])).collect());
        let ratio = |f: fn(&Timing) -> f64| median(rows.iter().map(|(b, t)| f(&t[i]) / b).collect());
        println!(
            "| {} | {:.2} | {:.1} | {:.1} | {:.3} | {:.3} |",
            v.label,
            col(|t| t.first_start_segment),
            col(|t| t.start_rungs_done),
            col(|t| t.whole),
            ratio(|t| t.whole),
            ratio(|t| t.start_rungs_done)
        );
    }
    println!("\nSSIM per rung against the source scaled with lanczos (video kb/s in brackets):\n");
    print!("| rung | baseline |");
    for v in variants {
        print!(" {} |", v.label);
    }
    println!("\n|---|---|{}", "---|".repeat(variants.len()));
    let mut all_rungs: Vec<Rung> = plan_ladder_of(dirs, variants, source)?;
    all_rungs.sort_by_key(Rung::short_side);
    for rung in &all_rungs {
        let base = if rungs.iter().any(|r| r.name == rung.name) {
            let (ssim, kbps) = quality(source, &baseline_dir.join(&rung.name), rung)?;
            format!("{ssim:.4} ({kbps:.0})")
        } else {
            "–".to_owned()
        };
        print!("| {} | {base} |", rung.name);
        for dir in dirs {
            let rendition = dir.join(&rung.name);
            if rendition.exists() {
                let (ssim, kbps) = quality(source, &rendition, rung)?;
                print!(" {ssim:.4} ({kbps:.0}) |");
            } else {
                print!(" – |");
            }
        }
        println!();
    }
    println!("\nBytes a player fetches before its first frame on the start rung (first variant listed):\n");
    println!("| variant | requests | bytes (playlists excluded) |\n|---|---|---|");
    for (v, dir) in variants.iter().zip(dirs) {
        let (requests, bytes) = first_frame_fetch(dir)?;
        println!("| {} | {requests} | {bytes} |", v.label);
    }
    Ok(())
}

/// Every rung any variant produced.
fn plan_ladder_of(dirs: &[PathBuf], variants: &[Variant], source: &Path) -> Res<Vec<Rung>> {
    let runtime = tokio::runtime::Runtime::new()?;
    let probed =
        runtime.block_on(probe(&Tools::default(), source, &MediaLimits::default(), Duration::from_secs(60)))?;
    let mut rungs: Vec<Rung> = Vec::new();
    for (variant, _) in variants.iter().zip(dirs) {
        for rung in plan_ladder(&probed, &variant.cfg) {
            if !rungs.iter().any(|r| r.name == rung.name) {
                rungs.push(rung);
            }
        }
    }
    Ok(rungs)
}

/// Requests and bytes before the first frame: master, the first variant's media playlist, its
/// init and first segment, and the same three for its audio rendition when separate.
fn first_frame_fetch(dir: &Path) -> Res<(usize, u64)> {
    let size = |path: PathBuf| std::fs::metadata(path).map(|m| m.len());
    let master = master_of(dir)?;
    let first = master.lines().find(|l| !l.starts_with('#') && !l.is_empty()).ok_or("empty master")?;
    let rung = first.trim_end_matches("/index.m3u8");
    let mut requests = 4;
    let mut bytes = size(dir.join(rung).join("init.mp4"))? + size(dir.join(rung).join("seg-00001.m4s"))?;
    let audio = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .and_then(|l| l.split("AUDIO=\"").nth(1))
        .and_then(|rest| rest.split('"').next());
    if let Some(group) = audio {
        requests += 3;
        bytes += size(dir.join(group).join("init.mp4"))? + size(dir.join(group).join("seg-00001.m4s"))?;
    }
    Ok((requests, bytes))
}

/// The master reel would publish for what is packaged in `dir`.
fn master_of(dir: &Path) -> Res<String> {
    let master = dir.join("master.m3u8");
    Ok(std::fs::read_to_string(master)?)
}

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
    let seconds = f64::from(SECONDS);
    Ok(bytes * 8.0 / seconds / 1000.0)
}
