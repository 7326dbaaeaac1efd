//! Time-to-playable benchmark: reel end to end (HTTP upload, pipeline workers, origin) against
//! the naive ladder (one ffmpeg per rung, run one after another).
//!
//! For each clip (30 s and 60 s, 1080×1920, 30 fps, `mandelbrot` upscaled with lanczos plus
//! temporal noise, stereo sine; x264 CRF 20), each pair runs the naive ladder and reel on the
//! same file, alternating which goes first. reel runs in this process on SQLite + local files
//! with one pipeline worker (the defaults). The clock starts when `complete` answers; a status
//! poller (every 10 ms) marks:
//! - **playable**: the status says `playable`, and the first segment of the preview master's
//!   first variant is fetched through the origin (200);
//! - **ready**: the status says `ready`;
//! - **ladder complete**: the status says `ladder_complete`.
//!
//! `REEL_BENCH_PAIRS` sets the number of pairs (default 3); `REEL_BENCH_CLIPS` the clip lengths
//! in seconds (default `30,60`).

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reel::api::auth::{Authenticator, Claims};
use reel::app::Application;
use reel::config::{Config, Secret};
use reel::media::{Tools, plan_phases, probe};
use reel::model::Role;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use common::{Res, generate_source, median, naive_ladder, timed};

const SECRET: &str = "reel-benchmark-secret-of-at-least-32-bytes";
const POLL: Duration = Duration::from_millis(10);

/// complete → playable, ready, ladder complete (seconds).
#[derive(Debug, Clone, Copy)]
struct Marks {
    playable: f64,
    ready: f64,
    ladder: f64,
}

#[tokio::main]
async fn main() -> Res<()> {
    let pairs: usize = std::env::var("REEL_BENCH_PAIRS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let clips: Vec<u32> = std::env::var("REEL_BENCH_CLIPS")
        .unwrap_or_else(|_| "30,60".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let scratch = tempfile::tempdir()?;
    for seconds in clips {
        let source = scratch.path().join(format!("source-{seconds}s.mp4"));
        generate_source(&source, seconds)?;
        let probed = probe(&Tools::default(), &source, &Default::default(), Duration::from_secs(60)).await?;
        let rungs = plan_phases(&probed, &Config::default().pipeline.ladder).all();
        let bytes = std::fs::read(&source)?;
        let mut rows = Vec::new();
        for pair in 0..pairs {
            let naive_dir = scratch.path().join("naive");
            let naive = || timed(|| naive_ladder(&source, &probed, &rungs, &naive_dir));
            let (naive_s, marks) = if pair % 2 == 0 {
                let n = naive()?;
                (n, reel_run(&bytes, scratch.path()).await?)
            } else {
                let m = reel_run(&bytes, scratch.path()).await?;
                (naive()?, m)
            };
            eprintln!("{seconds}s pair {}: naive {naive_s:.1}s, reel {marks:?}", pair + 1);
            rows.push((naive_s, marks));
        }
        report(seconds, &rows);
    }
    Ok(())
}

/// One reel run on a fresh database and object store; returns its marks.
async fn reel_run(clip: &[u8], scratch: &Path) -> Res<Marks> {
    let dir = tempfile::tempdir_in(scratch)?;
    let mut config = Config::default();
    config.server.bind = ([127, 0, 0, 1], 0).into();
    config.auth.jwt_secret = Some(Secret::new(SECRET));
    config.database.url = format!("sqlite://{}/reel.db", dir.path().display());
    config.storage.local_root = dir.path().join("objects");
    config.pipeline.work_dir = dir.path().join("work");
    let app = Application::build(config, true).await?;
    let base = format!("http://{}", app.local_addr()?);
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(app.run_until_stopped(async move { stopped.cancelled().await }));
    let result = measure(&base, clip).await;
    stop.cancel();
    server.await??;
    result
}

async fn measure(base: &str, clip: &[u8]) -> Res<Marks> {
    let http = reqwest::Client::new();
    let token = token("bench")?;
    let video_id = upload(&http, base, &token, clip).await?;
    let started = Instant::now();
    let (mut playable, mut ready) = (None, None);
    loop {
        let status: Value =
            http.get(format!("{base}/v1/videos/{video_id}")).bearer_auth(&token).send().await?.json().await?;
        if playable.is_none() && first_segment_served(&http, &status).await? {
            playable = Some(started.elapsed().as_secs_f64());
        }
        match status["status"].as_str() {
            Some("ready") => {
                let now = started.elapsed().as_secs_f64();
                let ready = *ready.get_or_insert(now);
                if status["ladder_complete"] == true {
                    return Ok(Marks { playable: playable.unwrap_or(ready), ready, ladder: now });
                }
            }
            Some("processing") => {}
            other => return Err(format!("unexpected status {other:?}: {status}").into()),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether the first segment of the first variant of the status's manifest answers 200.
async fn first_segment_served(http: &reqwest::Client, status: &Value) -> Res<bool> {
    let Some(master_url) = status["playback_manifest_url"].as_str() else {
        return Ok(false);
    };
    let master = http.get(master_url).send().await?.text().await?;
    let Some(variant) = master.lines().find(|l| !l.starts_with('#') && !l.is_empty()) else {
        return Ok(false);
    };
    let playlist_url = sibling(master_url, variant);
    let playlist = http.get(&playlist_url).send().await?.text().await?;
    let Some(segment) = playlist.lines().find(|l| l.ends_with(".m4s")) else {
        return Ok(false);
    };
    Ok(http.get(sibling(&playlist_url, segment)).send().await?.status().is_success())
}

fn sibling(url: &str, file: &str) -> String {
    format!("{}/{file}", url.rsplit_once('/').map_or(url, |(dir, _)| dir))
}

async fn upload(http: &reqwest::Client, base: &str, token: &str, clip: &[u8]) -> Res<String> {
    let body = json!({"filename": "clip.mp4", "content_type": "video/mp4", "size_bytes": clip.len()});
    let session: Value =
        http.post(format!("{base}/v1/videos/uploads")).bearer_auth(token).json(&body).send().await?.json().await?;
    let part_size = session["part_size"].as_u64().ok_or("no part size")? as usize;
    for target in session["parts"].as_array().ok_or("no parts")? {
        let n = target["part_number"].as_u64().ok_or("no part number")? as usize;
        let bytes = clip[(n - 1) * part_size..(n * part_size).min(clip.len())].to_vec();
        let url = target["url"].as_str().ok_or("no url")?;
        let response = http.put(url).bearer_auth(token).body(bytes).send().await?;
        if !response.status().is_success() {
            return Err(format!("part {n}: {}", response.status()).into());
        }
    }
    let id = session["upload_id"].as_str().ok_or("no upload id")?;
    let done: Value =
        http.post(format!("{base}/v1/videos/uploads/{id}/complete")).bearer_auth(token).send().await?.json().await?;
    Ok(done["video_id"].as_str().ok_or("no video id")?.to_owned())
}

fn token(user: &str) -> Res<String> {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3600;
    let claims = Claims { sub: user.into(), exp, role: Role::User, cohort: None };
    Ok(Authenticator::new(SECRET.as_bytes()).issue(&claims)?)
}

fn report(seconds: u32, rows: &[(f64, Marks)]) {
    println!(
        "\n{seconds} s clip: pair | naive (s) | playable (s) | ready (s) | ladder (s) | ready/naive | ladder/naive"
    );
    for (i, (naive, m)) in rows.iter().enumerate() {
        println!(
            "| {} | {naive:.1} | {:.2} | {:.1} | {:.1} | {:.3} | {:.3} |",
            i + 1,
            m.playable,
            m.ready,
            m.ladder,
            m.ready / naive,
            m.ladder / naive
        );
    }
    let naive = median(rows.iter().map(|r| r.0).collect());
    let pick = |f: fn(&Marks) -> f64| median(rows.iter().map(|r| f(&r.1)).collect());
    let ratio = |f: fn(&Marks) -> f64| median(rows.iter().map(|r| f(&r.1) / r.0).collect());
    println!(
        "| **median** | {naive:.1} | {:.2} | {:.1} | {:.1} | {:.3} | {:.3} |",
        pick(|m| m.playable),
        pick(|m| m.ready),
        pick(|m| m.ladder),
        ratio(|m| m.ready),
        ratio(|m| m.ladder)
    );
}
