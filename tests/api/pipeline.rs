//! Pipeline acceptance: upload → probe → transcode + package → publish_ready, failures,
//! retries, the hard timeout, reprocess, priority and concurrent claims.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use reel::db::{Db, DbOptions};
use reel::model::Role;
use reel::model::{EventType, Generation, OutboxEvent};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Backend, MIB, fake_mp4, ffmpeg_output, noise, portrait_clip, spawn_app, spawn_app_with, token, token_with,
};
use crate::on_both_backends;

on_both_backends!(
    a_portrait_clip_becomes_a_ready_ladder,
    hostile_uploads_fail_fast_with_specific_reasons,
    a_duplicate_outbox_delivery_runs_the_pipeline_once,
    the_hard_timeout_fails_and_reprocess_recovers,
    reprocess_publishes_a_new_generation_beside_the_old,
    a_source_gone_from_the_store_fails_at_once_without_leaking_detail,
    higher_value_videos_are_claimed_first,
    concurrent_workers_never_claim_the_same_job,
);

/// `KEY=VALUE` attributes of an `#EXT-X-…:` line (quoted values may hold commas).
fn attributes(line: &str) -> BTreeMap<String, String> {
    let list = line.split_once(':').map_or("", |(_, rest)| rest);
    let mut out = BTreeMap::new();
    let (mut key, mut value, mut in_key, mut quoted) = (String::new(), String::new(), true, false);
    for c in list.chars().chain([',']) {
        match c {
            '=' if in_key => in_key = false,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                in_key = true;
            }
            c if in_key => key.push(c),
            c => value.push(c),
        }
    }
    out
}

/// Segment durations of a media playlist.
fn extinfs(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').split(',').next().unwrap_or_default().parse().expect("EXTINF duration"))
        .collect()
}

async fn a_portrait_clip_becomes_a_ready_ladder(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = token("alice");
    let (_, video_id) = app.upload(&alice, &portrait_clip(720, 1280, 3)).await;
    assert_eq!(app.video(&video_id).await.status.as_str(), "processing", "the upload answers before any transcoding");
    let reports = app.drain().await;
    let stages: Vec<_> = reports.iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(stages, ["probe", "transcode", "publish_ready", "ladder"]);

    let video = app.video(&video_id).await;
    assert_eq!(video.status.as_str(), "ready");
    let root = format!("packaged/{video_id}/hls");
    let start = app.text(&format!("{root}/master.m3u8")).await;
    let start_variants: Vec<&str> = start.lines().filter(|l| l.ends_with("index.m3u8")).collect();
    assert_eq!(start_variants, ["234p/index.m3u8", "360p/index.m3u8"], "the ready master lists the start rungs only");
    let master = app.text(&format!("{root}/master.v2.m3u8")).await;
    assert!(master.starts_with("#EXTM3U"));
    assert!(master.contains("#EXT-X-INDEPENDENT-SEGMENTS"));
    let variants: Vec<(BTreeMap<String, String>, String)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter(|(l, _)| l.starts_with("#EXT-X-STREAM-INF:"))
        .map(|(l, uri)| (attributes(l), uri.to_owned()))
        .collect();
    let resolutions: Vec<&str> = variants.iter().map(|(a, _)| a["RESOLUTION"].as_str()).collect();
    assert_eq!(
        resolutions,
        ["234x416", "360x640", "540x960", "720x1280"],
        "the cellular floor and three portrait rungs, lowest first"
    );
    for (attrs, _) in &variants {
        for required in ["BANDWIDTH", "AVERAGE-BANDWIDTH", "CODECS", "RESOLUTION", "FRAME-RATE"] {
            assert!(attrs.contains_key(required), "{required} missing from {attrs:?}");
        }
        let peak: u64 = attrs["BANDWIDTH"].parse().expect("number");
        let average: u64 = attrs["AVERAGE-BANDWIDTH"].parse().expect("number");
        assert!(peak >= average && average > 0);
        assert!(attrs["CODECS"].starts_with("avc1.64") && attrs["CODECS"].contains("mp4a.40.2"), "{attrs:?}");
        assert_eq!(attrs["FRAME-RATE"], "30.000");
    }

    let mut counts = Vec::new();
    let mut timelines = Vec::new();
    for (_, uri) in &variants {
        let playlist = app.text(&format!("{root}/{uri}")).await;
        let kind = if uri.starts_with("234p") || uri.starts_with("360p") { "EVENT" } else { "VOD" };
        assert!(playlist.contains(&format!("#EXT-X-PLAYLIST-TYPE:{kind}\n")) && playlist.contains("#EXT-X-ENDLIST"));
        assert!(playlist.contains("#EXT-X-MAP:URI=\"init.mp4\""));
        let durations = extinfs(&playlist);
        let total: f64 = durations.iter().sum();
        assert!((total - 3.0).abs() <= 0.5, "{uri} lasts {total}s");
        counts.push(durations.len());
        timelines.push(durations);
        let dir = uri.trim_end_matches("index.m3u8");
        let init = app.object(&format!("{root}/{dir}init.mp4")).await;
        for segment in playlist.lines().filter(|l| l.ends_with(".m4s")) {
            let bytes = [init.clone(), app.object(&format!("{root}/{dir}{segment}")).await].concat();
            assert!(first_packet_is_keyframe(&bytes), "{dir}{segment} does not start with a keyframe");
        }
    }
    assert!(counts.iter().all(|&c| c == counts[0] && c >= 3), "segment counts {counts:?}");
    for timeline in &timelines[1..] {
        for (a, b) in timeline.iter().zip(&timelines[0]) {
            assert!((a - b).abs() < 0.05, "segment boundaries differ across rungs: {timelines:?}");
        }
    }

    let renditions = app.state.db.renditions_of(video.id, Generation::FIRST).await.expect("db");
    assert_eq!(renditions.iter().map(|r| r.profile.as_str()).collect::<Vec<_>>(), ["234p", "360p", "540p", "720p"]);
    assert!(renditions.iter().all(|r| r.status == "ready" && r.segment_count == counts[0] as i64));
    let events: Vec<String> =
        app.state.db.events_for(&video_id).await.expect("db").into_iter().map(|e| e.event_type).collect();
    assert_eq!(events, ["video_upload_completed", "video_playable", "video_ready", "video_ladder_completed"]);
    assert!(!app.object(&format!("{root}/poster.jpg")).await.is_empty(), "a poster is written");
}

/// ffprobe's first video packet of `fmp4` (init + one segment) carries the keyframe flag.
fn first_packet_is_keyframe(fmp4: &[u8]) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("segment.mp4");
    std::fs::write(&path, fmp4).expect("write");
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
            "-read_intervals",
            "%+#1",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).lines().next().is_some_and(|flags| flags.starts_with('K'))
}

/// A short clip whose sample aspect ratio is `sar` (e.g. `1/15`).
fn sar_clip(sar: &str) -> Vec<u8> {
    let video = format!("testsrc2=size=320x240:rate=30:duration=1,setsar={sar}");
    ffmpeg_output(
        "sar.mp4",
        &["-f", "lavfi", "-i", &video, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    )
}

async fn hostile_uploads_fail_fast_with_specific_reasons(backend: Backend) {
    let app = spawn_app(backend).await;
    let mallory = token("mallory");
    let clip = portrait_clip(180, 320, 1);
    let mut truncated = clip.clone();
    truncated.truncate(clip.len() / 2);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("random bytes", noise(64 * 1024), "unsupported_container"),
        ("mp4 header, no movie", fake_mp4(64 * 1024), "corrupt_media"),
        ("truncated mp4", truncated, "corrupt_media"),
        ("text file", b"hello, this is not a video\n".repeat(50), "unsupported_container"),
        (
            "hls playlist",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n".to_vec(),
            "unsupported_container",
        ),
        ("ffconcat script", b"ffconcat version 1.0\nfile /etc/passwd\n".to_vec(), "unsupported_container"),
        (
            "audio only",
            ffmpeg_output("a.mp4", &["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"]),
            "no_video_stream",
        ),
        (
            "still image",
            ffmpeg_output("i.png", &["-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1"]),
            "no_video_stream",
        ),
        ("extreme sample aspect ratio", sar_clip("1/15"), "resolution_exceeds_limit"),
    ];
    for (what, bytes, reason) in cases {
        let (_, video_id) = app.upload(&mallory, &bytes).await;
        let reports = app.drain().await;
        assert_eq!(reports.len(), 1, "{what}: only the probe ran");
        let video = app.video(&video_id).await;
        assert_eq!(video.status.as_str(), "failed", "{what}");
        assert_eq!(video.failed_reason.as_deref(), Some(reason), "{what}: creators see the vocabulary only");
        assert_eq!(video.retryable, Some(false), "{what}");
        let events = app.state.db.events_for(&video_id).await.expect("db");
        assert_eq!(events.last().map(|e| e.event_type.as_str()), Some("video_failed"), "{what}");
    }
    assert!(app.keys_under("packaged/").await.is_empty(), "nothing was packaged for hostile input");
}

async fn a_duplicate_outbox_delivery_runs_the_pipeline_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let bo = token("bo");
    let (_, video_id) = app.upload(&bo, &portrait_clip(360, 640, 1)).await;
    let original = app.state.db.events_for(&video_id).await.expect("db").remove(0);
    let duplicate = OutboxEvent {
        id: Uuid::now_v7(),
        event_type: EventType::UploadCompleted,
        aggregate_id: original.aggregate_id.clone(),
        payload: original.payload.clone(),
        created_at: Utc::now(),
    };
    app.state.db.insert_event(&duplicate).await.expect("insert duplicate");
    let reports = app.drain().await;
    assert_eq!(reports.len(), 3, "one probe, one transcode, one publish");
    app.state.db.insert_event(&OutboxEvent { id: Uuid::now_v7(), ..duplicate }).await.expect("insert late duplicate");
    assert!(app.drain().await.is_empty(), "a late duplicate starts nothing");
    let jobs = app.state.db.jobs_of(video_id.parse().expect("uuid")).await.expect("db");
    assert_eq!(jobs.len(), 3);
    assert_eq!(app.video(&video_id).await.status.as_str(), "ready");
}

async fn the_hard_timeout_fails_and_reprocess_recovers(backend: Backend) {
    let app = spawn_app(backend).await;
    let cy = token("cy");
    let (_, video_id) = app.upload(&cy, &portrait_clip(360, 640, 1)).await;
    app.state.pipeline.relay(Utc::now()).await.expect("relay");
    let within = app.state.pipeline.enforce_deadline(Utc::now()).await.expect("deadline");
    assert_eq!(within, 0, "a fresh video is within its deadline");
    let later = Utc::now() + chrono::Duration::minutes(31);
    assert_eq!(app.state.pipeline.enforce_deadline(later).await.expect("deadline"), 1);
    let video = app.video(&video_id).await;
    assert_eq!(
        (video.status.as_str(), video.failed_reason.as_deref(), video.retryable),
        ("failed", Some("processing_timeout"), Some(true))
    );
    assert!(app.drain().await.is_empty(), "the timed-out video's jobs were cancelled");

    let reprocess =
        |who: String| app.http.post(app.url(&format!("/v1/ops/videos/{video_id}/reprocess"))).bearer_auth(who).send();
    assert_eq!(reprocess(cy.clone()).await.expect("request").status(), StatusCode::FORBIDDEN, "only admins reprocess");
    let response = reprocess(token_with("ops", Role::Admin, None)).await.expect("request");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["generation"], 2);
    app.drain().await;
    let video = app.video(&video_id).await;
    assert_eq!((video.status.as_str(), video.generation, video.failed_reason), ("ready", Generation::new(2), None));
}

async fn reprocess_publishes_a_new_generation_beside_the_old(backend: Backend) {
    let app = spawn_app(backend).await;
    let di = token("di");
    let admin = token_with("ops", Role::Admin, None);
    let (_, video_id) = app.upload(&di, &portrait_clip(360, 640, 1)).await;
    app.drain().await;
    let root = format!("packaged/{video_id}/hls");
    let first_master = app.text(&format!("{root}/master.m3u8")).await;
    let first_keys: HashSet<String> = app.keys_under(&root).await.into_iter().collect();

    let url = app.url(&format!("/v1/ops/videos/{video_id}/reprocess"));
    assert_eq!(app.http.post(&url).bearer_auth(&admin).send().await.expect("request").status(), StatusCode::ACCEPTED);
    let (status, error) =
        crate::helpers::error_code(app.http.post(&url).bearer_auth(&admin).send().await.expect("request")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_reprocessable")),
        "a processing video is not reprocessed twice"
    );
    app.drain().await;

    let video = app.video(&video_id).await;
    assert_eq!((video.status.as_str(), video.generation), ("ready", Generation::new(2)));
    assert!(app.text(&format!("{root}/g2/master.m3u8")).await.contains("#EXT-X-STREAM-INF"));
    assert_eq!(app.text(&format!("{root}/master.m3u8")).await, first_master, "generation 1 is untouched");
    let all: HashSet<String> = app.keys_under(&root).await.into_iter().collect();
    let added: Vec<&String> = all.difference(&first_keys).collect();
    assert!(
        !added.is_empty() && added.iter().all(|k| k.starts_with(&format!("{root}/g2/"))),
        "new outputs only under g2/"
    );
    let (_, _, ops) = app.get_json(&admin, "/v1/ops/videos?status=processing").await;
    assert_eq!(ops["videos"], json!([]));
}

async fn a_source_gone_from_the_store_fails_at_once_without_leaking_detail(backend: Backend) {
    let app = spawn_app(backend).await;
    let ed = token("ed");
    let (_, video_id) = app.upload(&ed, &portrait_clip(180, 320, 1)).await;
    let source = app.video(&video_id).await.origin_object_key;
    app.state.storage.objects().delete(&source.as_str().into()).await.expect("delete source");
    let reports = app.drain().await;
    let outcomes: Vec<String> = reports.iter().map(|r| format!("{:?}", r.outcome)).collect();
    assert_eq!(outcomes, ["Failed"], "a source that is gone is not retried");
    let video = app.video(&video_id).await;
    assert_eq!(video.retryable, Some(true), "a reprocess may help once the store is repaired");
    assert_eq!(video.failed_reason.as_deref(), Some("internal_error"), "no store detail reaches the creator");

    let admin = token_with("ops", Role::Admin, None);
    let (_, _, failed) = app.get_json(&admin, "/v1/ops/videos?status=failed").await;
    let row = &failed["videos"][0];
    assert_eq!(row["video_id"], video_id.as_str());
    assert_eq!(
        (row["stage"].as_str(), row["attempts"].as_i64(), row["retryable"].as_bool()),
        (Some("probe"), Some(1), Some(true))
    );
    assert!(row["last_error"].as_str().is_some_and(|e| e.contains("object store")), "admins see the cause: {row}");
    assert!(row["age_ms"].as_i64().is_some_and(|age| age >= 0));
}

async fn higher_value_videos_are_claimed_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = token_with("ops", Role::Admin, None);
    let body = json!({"follower_count": 2_000_000});
    let response =
        app.http.put(app.url("/v1/ops/creators/star")).bearer_auth(&admin).json(&body).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let (_, first) = app.upload(&token("newcomer"), &fake_mp4(MIB)).await;
    let (_, second) = app.upload(&token("star"), &fake_mp4(MIB)).await;
    app.state.pipeline.relay(Utc::now()).await.expect("relay");
    let order: Vec<String> = [app.state.pipeline.run_next().await, app.state.pipeline.run_next().await]
        .into_iter()
        .map(|r| r.expect("claim").first().expect("a job").video_id.to_string())
        .collect();
    assert_eq!(order, [second, first], "the star's later upload runs first");
}

async fn concurrent_workers_never_claim_the_same_job(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.quotas.processing_videos = 100).await;
    let fi = token("fi");
    for _ in 0..12 {
        app.upload(&fi, &fake_mp4(64 * 1024)).await;
    }
    app.state.pipeline.relay(Utc::now()).await.expect("relay");
    let options = DbOptions {
        url: app.config.database.url.clone(),
        max_connections: 2,
        acquire_timeout: std::time::Duration::from_secs(10),
    };
    let mut workers = Vec::new();
    for n in 0..4 {
        let db = Db::connect(&options).expect("pool");
        workers.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            let lease = Utc::now() + chrono::Duration::minutes(5);
            while let Some(job) = db.claim_job(&format!("worker-{n}"), lease, Utc::now()).await.expect("claim") {
                claimed.push(job.id);
            }
            claimed
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 12, "every job claimed");
    assert_eq!(unique.len(), 12, "no job claimed twice");
}
