//! Crash safety: a worker killed mid-transcode loses its lease, another worker finishes the
//! video, and the published outputs are complete and not duplicated.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reel::config::{Config, StorageBackend};
use reel::model::{JobStatus, Stage};

use crate::helpers::{Backend, JWT_SECRET, TestApp, portrait_clip, spawn_app_with, token};
use crate::on_both_backends;

on_both_backends!(a_worker_killed_mid_transcode_is_taken_over);

const LEASE: Duration = Duration::from_secs(2);

/// Starts `reel worker` on the same database and bucket as `config`.
fn spawn_worker(config: &Config, dir: &std::path::Path) -> tokio::process::Child {
    let mut file_config = config.clone();
    file_config.pipeline.workers = 1;
    let path = dir.join("worker.toml");
    std::fs::write(&path, toml::to_string(&file_config).expect("config serialises")).expect("write config");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"));
    command.arg("--config").arg(&path).arg("worker").env("REEL_AUTH__JWT_SECRET", JWT_SECRET);
    if let (StorageBackend::S3, Some(s3)) = (config.storage.backend, &config.storage.s3) {
        command.env("REEL_STORAGE__S3__SECRET_ACCESS_KEY", s3.secret_access_key.expose());
    }
    command.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn().expect("reel worker starts")
}

impl TestApp {
    async fn transcode_running_with_segments(&self, video_id: &str) -> bool {
        let jobs = self.state.db.jobs_of(video_id.parse().expect("uuid")).await.expect("db");
        let running = jobs.iter().any(|(job, status)| job.stage == Stage::Transcode && *status == JobStatus::Running);
        let landed = self.keys_under(&format!("packaged/{video_id}/hls/360p")).await;
        running && landed.iter().any(|key| key.ends_with(".m4s"))
    }
}

async fn a_worker_killed_mid_transcode_is_taken_over(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.pipeline.lease = LEASE).await;
    let (_, video_id) = app.upload(&token("gil"), &portrait_clip(720, 1280, 8)).await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut worker = spawn_worker(&app.config, scratch.path());

    let started = Instant::now();
    while !app.transcode_running_with_segments(&video_id).await {
        assert!(started.elapsed() < Duration::from_secs(90), "the worker never got to transcoding");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.start_kill().expect("kill -9");
    worker.wait().await.expect("reaped");

    tokio::time::sleep(LEASE + Duration::from_millis(500)).await;
    let reports = app.drain().await;
    let stages: Vec<_> = reports.iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(stages, ["transcode", "publish_ready"], "this worker resumed where the killed one stopped");
    let video = app.state.db.get_video(video_id.parse().expect("uuid")).await.expect("db").expect("video");
    assert_eq!(video.status.as_str(), "ready");
    let jobs = app.state.db.jobs_of(video.id).await.expect("db");
    let transcode = jobs.iter().find(|(job, _)| job.stage.as_str() == "transcode").expect("transcode job");
    assert_eq!(transcode.0.attempt, 2, "the crash counted as one attempt");

    let root = format!("packaged/{video_id}/hls");
    for rendition in ["234p", "360p", "540p", "720p"] {
        let playlist = String::from_utf8(app.object(&format!("{root}/{rendition}/index.m3u8")).await).expect("utf-8");
        let mut expected: BTreeSet<String> =
            playlist.lines().filter(|l| l.ends_with(".m4s")).map(str::to_owned).collect();
        assert!(!expected.is_empty());
        expected.extend(["init.mp4".to_owned(), "index.m3u8".to_owned()]);
        let stored: BTreeSet<String> = app
            .keys_under(&format!("{root}/{rendition}"))
            .await
            .into_iter()
            .map(|key| key.rsplit('/').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(stored, expected, "{rendition}: exactly the files its playlist names");
    }
}
