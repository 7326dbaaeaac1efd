//! Crash safety: a worker killed mid-phase-1, after its preview was served, loses its lease;
//! another worker restarts the phase under a new epoch and finishes the video, and no URL a
//! viewer already fetched ever changes its bytes (playlists are only appended to).

use std::time::{Duration, Instant};

use crate::helpers::{Backend, portrait_clip, spawn_app_with, spawn_worker, token};
use crate::on_both_backends;
use crate::playable::assert_nothing_changed;

on_both_backends!(a_worker_killed_mid_phase_one_is_taken_over);

const LEASE: Duration = Duration::from_secs(2);

async fn a_worker_killed_mid_phase_one_is_taken_over(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.pipeline.lease = LEASE;
        config.pipeline.ladder.segment_seconds = 1.0;
    })
    .await;
    let owner = token("gil");
    let (_, video_id) = app.upload(&owner, &portrait_clip(540, 960, 20)).await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut worker = spawn_worker(&app.config, scratch.path(), |c| c.pipeline.workers = 1);

    let started = Instant::now();
    let preview = loop {
        let status = app.status(&owner, &video_id).await;
        assert_eq!(status["status"], "processing", "the worker finished before it could be killed: {status}");
        if let Some(url) = status["playback_manifest_url"].as_str() {
            break url.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the worker never made the video playable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let served = app.fetch_tree(&preview).await;
    worker.start_kill().expect("kill -9");
    worker.wait().await.expect("reaped");

    tokio::time::sleep(LEASE + Duration::from_millis(500)).await;
    let reports = app.drain().await;
    let stages: Vec<_> = reports.iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(stages, ["transcode", "publish_ready", "ladder"], "this worker resumed where the killed one stopped");
    let video = app.video(&video_id).await;
    assert_eq!(video.status.as_str(), "ready");
    let jobs = app.state.db.jobs_of(video.id).await.expect("db");
    let transcode = jobs.iter().find(|(job, _)| job.stage.as_str() == "transcode").expect("transcode job");
    assert_eq!(transcode.0.attempt, 2, "the crash counted as one attempt");

    assert_nothing_changed(&app, &served).await;
    let abandoned: Vec<_> = served.keys().filter(|url| url.ends_with("index.m3u8")).collect();
    for url in abandoned {
        let (_, _, text) = app.fetch(url).await;
        assert!(
            String::from_utf8_lossy(&text).ends_with("#EXT-X-ENDLIST\n"),
            "{url}: the abandoned playlist is closed"
        );
    }
    let status = app.status(&owner, &video_id).await;
    let manifest = status["playback_manifest_url"].as_str().expect("url");
    let tree = app.fetch_tree(manifest).await;
    let restarted: Vec<_> = tree.keys().filter(|url| url.contains("/e2/360p/")).collect();
    assert!(!restarted.is_empty(), "the restart wrote its own tree beside the served one: {tree:?}");
    let row = app.state.db.playback_row(video.id).await.expect("db").expect("row");
    let start = row.manifest_url.map(|key| key.replace("master.v2.m3u8", "e2/master.m3u8"));
    let start = app.url(&format!("/origin/{}", start.expect("manifest")));
    app.fetch_tree(&start).await;
}
