//! Correctness under faults: a job's lease belongs to one claim, so a worker whose lease lapsed
//! while it was still working (here: a sibling worker in the same process took the job over)
//! can neither publish nor disturb what the new claim publishes; a completion holds its upload
//! session against the sweeper and abort, and finishes after a crash between assembling the
//! source and committing the video.

use std::time::{Duration, Instant};

use chrono::Utc;
use reel::ingest::sniff;
use reel::model::Role;
use reel::pipeline::JobOutcome;
use reel::storage::{Assembly, Naming, keys};
use reqwest::StatusCode;

use crate::helpers::{
    Backend, MIB, error_code, fake_mp4, noise, portrait_clip, spawn_app, spawn_app_with, token, token_with,
};
use crate::on_both_backends;
use crate::playable::assert_nothing_changed;

on_both_backends!(
    a_lapsed_claim_never_publishes_beside_its_successor,
    a_completion_interrupted_after_assembly_finishes_despite_the_sweeper,
    the_hard_timeout_stops_phase_two_and_keeps_the_video_ready,
    retention_deletes_dead_sources_replaced_generations_and_orphaned_scratch,
);

async fn retention_deletes_dead_sources_replaced_generations_and_orphaned_scratch(backend: Backend) {
    let app = spawn_app(backend).await;
    let lu = token("lu");
    let pipeline = &app.state.pipeline;

    let (_, rejected) = app.upload(&lu, &noise(4096)).await;
    let (_, replaced) = app.upload(&lu, &portrait_clip(360, 640, 1)).await;
    app.drain().await;
    assert_eq!(app.video(&rejected).await.status.as_str(), "failed");
    let admin = token_with("ops", Role::Admin, None);
    let response = app
        .http
        .post(app.url(&format!("/v1/ops/videos/{replaced}/reprocess")))
        .bearer_auth(admin)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.drain().await;
    let video = app.video(&replaced).await;
    assert_eq!((video.status.as_str(), video.generation.get()), ("ready", 2));

    let key = app.video(&rejected).await.origin_object_key;
    let source = key.rsplit_once('/').map_or(key.as_str(), |(folder, _)| folder).to_owned();
    let root = format!("packaged/{replaced}/hls/");
    let kept = pipeline.expire_retained(Utc::now()).await.expect("retention");
    assert_eq!(kept, Default::default(), "nothing is deleted within the retention period");
    assert!(!app.keys_under(&source).await.is_empty());
    assert!(app.keys_under(&root).await.iter().any(|key| !key.starts_with(&format!("{root}g2/"))));

    let later = Utc::now() + chrono::Duration::days(8);
    let report = pipeline.expire_retained(later).await.expect("retention");
    assert_eq!((report.sources, report.generations), (1, 1));
    assert!(app.keys_under(&source).await.is_empty(), "the rejected upload's source is deleted");
    let left = app.keys_under(&root).await;
    assert!(!left.is_empty() && left.iter().all(|key| key.starts_with(&format!("{root}g2/"))), "{left:?}");
    let status = app.status(&lu, &replaced).await;
    app.fetch_tree(status["playback_manifest_url"].as_str().expect("manifest")).await;
    assert_eq!(pipeline.expire_retained(later).await.expect("retention"), Default::default(), "done once");

    let work = &app.config.pipeline.work_dir;
    let (orphan, live) = (work.join("reel-job-crashed"), work.join("reel-job-running"));
    for dir in [&orphan, &live] {
        std::fs::create_dir_all(dir).expect("scratch dir");
    }
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(&orphan).expect("open dir").set_modified(long_ago).expect("age the orphan");
    assert_eq!(pipeline.clear_orphaned_work().expect("scan"), 1);
    assert!(!orphan.exists() && live.exists(), "only the untouched scratch directory is removed");
}

async fn the_hard_timeout_stops_phase_two_and_keeps_the_video_ready(backend: Backend) {
    let app = spawn_app(backend).await;
    let kim = token("kim");
    let (_, video_id) = app.upload(&kim, &portrait_clip(540, 960, 2)).await;
    let pipeline = &app.state.pipeline;
    pipeline.relay(Utc::now()).await.expect("relay");
    let phase_one: Vec<_> = pipeline.run_next().await.expect("runs").iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(phase_one, ["probe", "transcode", "publish_ready"]);
    let video = app.video(&video_id).await;
    assert_eq!(video.status.as_str(), "ready");

    assert_eq!(pipeline.enforce_deadline(Utc::now()).await.expect("deadline"), 0, "phase 2 is within its deadline");
    let later = Utc::now() + chrono::Duration::minutes(31);
    assert_eq!(pipeline.enforce_deadline(later).await.expect("deadline"), 1, "phase 2 timed out");
    let video = app.video(&video_id).await;
    assert_eq!(video.status.as_str(), "ready", "a phase-2 timeout does not un-ready the video");
    let row = app.state.db.playback_row(video.id).await.expect("db").expect("row");
    assert_eq!(row.ladder_failed_reason.as_deref(), Some("processing_timeout"));
    assert!(row.ladder_completed_at.is_none());
    assert!(app.drain().await.is_empty(), "the timed-out ladder job was cancelled");

    let admin = token_with("ops", Role::Admin, None);
    let response = app
        .http
        .post(app.url(&format!("/v1/ops/videos/{video_id}/reprocess")))
        .bearer_auth(admin)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let stages: Vec<_> = app.drain().await.iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(stages, ["ladder"], "a reprocess runs phase 2 again");
    let row = app.state.db.playback_row(video.id).await.expect("db").expect("row");
    assert!(row.ladder_completed_at.is_some() && row.ladder_failed_reason.is_none());
}

async fn a_completion_interrupted_after_assembly_finishes_despite_the_sweeper(backend: Backend) {
    let app = spawn_app(backend).await;
    let jo = token("jo");
    let data = fake_mp4(MIB);
    let created = app.start_upload(&jo, &data, None).await;
    let id = created["upload_id"].as_str().expect("id");
    assert_eq!(app.send_part(&jo, &created["parts"][0], data.clone(), &[]).await.status(), StatusCode::OK);

    // A completion takes the session, assembles the source and dies before its commit.
    let upload_id = id.parse().expect("uuid");
    let session = app.state.db.get_upload(upload_id).await.expect("db").expect("session");
    let parts = app.state.db.list_parts(upload_id).await.expect("db");
    let now = Utc::now();
    let held = app.state.db.begin_completion(upload_id, now + chrono::Duration::days(3), now).await.expect("db");
    assert!(held, "the completion holds the session");
    let naming = Naming {
        head_len: sniff::SNIFF_LEN,
        name: |head: &[u8]| keys::source(&session.creator_id, session.video_id, sniff::extension(head)),
    };
    let assembled = app.state.storage.assemble(&session, &parts, naming).await.expect("assembled");
    let Assembly::Stored { key } = assembled else { panic!("the parts assemble") };

    // The session's deadline passes while it is held: neither the sweeper nor abort closes it.
    let report = app.state.ingest.sweep(now + chrono::Duration::days(2)).await.expect("sweep");
    assert_eq!(report.expired, 0, "a session being completed is not expired");
    let (status, error) = error_code(app.abort(&jo, id).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::CONFLICT, Some("upload_completing")));

    // The retried completion finds the assembled source and finishes.
    let response = app.complete(&jo, id).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "the retry finishes the completion");
    let video = app.state.db.get_video(session.video_id).await.expect("db").expect("the video exists");
    assert_eq!(video.origin_object_key, key.to_string());
    assert_eq!(app.object(key.as_ref()).await, data, "the source is the upload, byte for byte");
    assert_eq!(app.state.db.events_for(&session.video_id.to_string()).await.expect("db").len(), 1);
}

/// Long enough that a loaded machine renews in time; the lapse below is forced.
const LEASE: Duration = Duration::from_secs(30);

async fn a_lapsed_claim_never_publishes_beside_its_successor(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.pipeline.lease = LEASE).await;
    let owner = token("ines");
    let (_, video_id) = app.upload(&owner, &portrait_clip(540, 960, 20)).await;
    let pipeline = app.state.pipeline.clone();
    pipeline.relay(Utc::now()).await.expect("relay");
    let first = tokio::spawn({
        let pipeline = pipeline.clone();
        async move { pipeline.run_next().await }
    });

    let started = Instant::now();
    let preview = loop {
        let status = app.status(&owner, &video_id).await;
        assert_eq!(status["status"], "processing", "the first worker finished before its lease lapsed: {status}");
        if let Some(url) = status["playback_manifest_url"].as_str() {
            break url.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the first worker never made the video playable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let served = app.fetch_tree(&preview).await;

    // The first claim's lease lapses while its ffmpeg still runs; a sibling takes the job over.
    app.exec_sql(
        "UPDATE video_processing_jobs SET lease_expires_at = '2000-01-01T00:00:00+00:00' \
         WHERE stage = 'transcode' AND status = 'running'",
    )
    .await;
    let second = pipeline.run_next().await.expect("the sibling runs");
    let first = first.await.expect("the first worker did not panic").expect("the first worker ran");

    let outcomes = |reports: &[reel::pipeline::JobReport]| {
        reports.iter().map(|r| (r.stage.as_str(), r.outcome.clone())).collect::<Vec<_>>()
    };
    assert_eq!(
        outcomes(&first),
        [("probe", JobOutcome::Done), ("transcode", JobOutcome::Lost)],
        "the lapsed claim stopped"
    );
    assert_eq!(
        outcomes(&second),
        [("transcode", JobOutcome::Done), ("publish_ready", JobOutcome::Done)],
        "the new claim finished phase 1"
    );
    let ladder = outcomes(&app.drain().await);
    assert_eq!(ladder, [("ladder", JobOutcome::Done)]);
    let video = app.video(&video_id).await;
    assert_eq!(video.status.as_str(), "ready");
    let events = app.state.db.events_for(&video_id).await.expect("db");
    let published: Vec<_> = events.iter().filter(|e| e.event_type == "video_ready").collect();
    assert_eq!(published.len(), 1, "exactly one claim published: {events:?}");
    let jobs = app.state.db.jobs_of(video.id).await.expect("db");
    let transcode = jobs.iter().find(|(job, _)| job.stage.as_str() == "transcode").expect("transcode job");
    assert_eq!(transcode.0.attempt, 2);

    // Every segment the published playlists name is stored, and nothing the lapsed claim served
    // changed its bytes.
    let status = app.status(&owner, &video_id).await;
    let manifest = status["playback_manifest_url"].as_str().expect("a published manifest");
    let tree = app.fetch_tree(manifest).await;
    assert!(tree.keys().any(|url| url.contains("/e2/")), "the new claim's tree is the published one: {tree:?}");
    assert_nothing_changed(&app, &served).await;
    assert_eq!(app.drain().await.len(), 0, "nothing is left to run");
}
