//! Playable in seconds: the start rung is published while it encodes (an `EVENT` playlist behind
//! a preview master), the video becomes ready on it, then the full ladder arrives under a new
//! versioned master, and the scheduler serves every creator's start rung before anyone's ladder.

use std::collections::BTreeMap;

use reel::model::Role;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, portrait_clip, spawn_app, spawn_app_with, token, token_with};
use crate::on_both_backends;

on_both_backends!(
    a_clip_plays_while_processing_then_upgrades_to_the_full_ladder,
    every_creator_gets_a_start_rung_before_a_burst_or_any_ladder,
    a_failed_ladder_keeps_the_video_ready_and_can_be_run_again,
);

/// What a client fetched: URL → (cache-control, bytes).
pub type Fetched = BTreeMap<String, (String, Vec<u8>)>;

impl TestApp {
    /// GETs an absolute URL (the origin, as a player would).
    pub async fn fetch(&self, url: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = self.http.get(url).send().await.expect("request");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.bytes().await.expect("body").to_vec())
    }

    /// Fetches a master and everything it names (media playlists, init and every segment
    /// listed), asserting each answers 200. Returns all of it.
    pub async fn fetch_tree(&self, master_url: &str) -> Fetched {
        let mut fetched = Fetched::new();
        let (status, headers, master) = self.fetch(master_url).await;
        assert_eq!(status, StatusCode::OK, "{master_url}");
        fetched.insert(master_url.to_owned(), (cache_control(&headers), master.clone()));
        for playlist_url in media_playlists(master_url, &String::from_utf8_lossy(&master)) {
            let (status, headers, playlist) = self.fetch(&playlist_url).await;
            assert_eq!(status, StatusCode::OK, "{playlist_url}");
            let text = String::from_utf8_lossy(&playlist).into_owned();
            fetched.insert(playlist_url.clone(), (cache_control(&headers), playlist));
            for file in text.lines().filter(|l| l.ends_with(".m4s")).chain(["init.mp4"]) {
                let url = resolve(&playlist_url, file);
                let (status, headers, body) = self.fetch(&url).await;
                assert_eq!(status, StatusCode::OK, "{url} named by {playlist_url}");
                fetched.insert(url, (cache_control(&headers), body));
            }
        }
        fetched
    }

    /// The owner's view of a video.
    pub async fn status(&self, owner: &str, video_id: &str) -> Value {
        let (status, _, body) = self.get_json(owner, &format!("/v1/videos/{video_id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

pub fn cache_control(headers: &HeaderMap) -> String {
    headers.get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// `file` relative to the directory of `url`.
pub fn resolve(url: &str, file: &str) -> String {
    format!("{}/{file}", url.rsplit_once('/').map_or(url, |(dir, _)| dir))
}

/// The media playlists a master names: every variant and the audio rendition.
pub fn media_playlists(master_url: &str, master: &str) -> Vec<String> {
    let variants = master.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(str::to_owned);
    let audio = master.lines().filter_map(|l| Some(l.split("URI=\"").nth(1)?.split('"').next()?.to_owned()));
    variants.chain(audio).map(|uri| resolve(master_url, &uri)).collect()
}

/// Every URL fetched before still answers the same bytes, except that a media playlist may
/// have been appended to (an `EVENT` playlist gaining segments and `ENDLIST`).
pub async fn assert_nothing_changed(app: &TestApp, before: &Fetched) {
    for (url, (_, old)) in before {
        let (status, _, now) = app.fetch(url).await;
        assert_eq!(status, StatusCode::OK, "{url} is gone");
        if url.ends_with("index.m3u8") {
            assert!(now.starts_with(old), "{url} was rewritten, not appended to");
        } else {
            assert_eq!(&now, old, "{url} changed its bytes");
        }
    }
}

async fn a_clip_plays_while_processing_then_upgrades_to_the_full_ladder(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.pipeline.ladder.segment_seconds = 1.0).await;
    let (owner, viewer) = (token("pia"), token("quinn"));
    let (_, video_id) = app.upload(&owner, &portrait_clip(540, 960, 20)).await;
    let pipeline = app.state.pipeline.clone();
    let running = tokio::spawn(async move { pipeline.drain().await });

    let mut preview: Option<Fetched> = None;
    let mut start_master = None;
    loop {
        let status = app.status(&owner, &video_id).await;
        match status["status"].as_str() {
            Some("processing") if status["playable"] == true && preview.is_none() => {
                assert!(status["poll_after_ms"].as_u64().is_some(), "{status}");
                let url = status["playback_manifest_url"].as_str().expect("a preview URL once playable").to_owned();
                assert!(url.ends_with("/preview.m3u8"), "{url}");
                let (code, _, _) = app.get_json(&viewer, &format!("/v1/videos/{video_id}")).await;
                assert_eq!(code, StatusCode::NOT_FOUND, "only the creator sees a processing video");
                preview = Some(app.fetch_tree(&url).await);
            }
            Some("processing") => {
                if status["playable"] == false {
                    assert!(status.get("playback_manifest_url").is_none(), "{status}");
                }
            }
            Some("ready") if status["ladder_complete"] == false => {
                start_master.get_or_insert(status["playback_manifest_url"].as_str().expect("url").to_owned());
            }
            Some("ready") => break,
            other => panic!("unexpected status {other:?}: {status}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    running.await.expect("pipeline task").expect("pipeline drains");

    let preview = preview.expect("the video was playable while still processing");
    let growing: Vec<_> = preview.iter().filter(|(url, _)| url.ends_with("360p/index.m3u8")).collect();
    let [(playlist_url, (cache, first_text))] = growing.as_slice() else { panic!("one start rung: {preview:?}") };
    let first_text = String::from_utf8_lossy(first_text);
    assert!(first_text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{first_text}");
    assert!(!first_text.contains("#EXT-X-ENDLIST"), "no ENDLIST while phase 1 runs: {first_text}");
    assert_eq!(cache, "no-cache", "a growing playlist is never cached");
    let (_, headers, ended) = app.fetch(playlist_url).await;
    let ended = String::from_utf8_lossy(&ended);
    assert!(ended.starts_with(first_text.as_ref()) && ended.ends_with("#EXT-X-ENDLIST\n"), "{ended}");
    assert_eq!(cache_control(&headers), "public, max-age=60", "an ended playlist takes VOD caching");
    assert_nothing_changed(&app, &preview).await;

    let status = app.status(&viewer, &video_id).await;
    let full = status["playback_manifest_url"].as_str().expect("url");
    assert!(full.ends_with("/master.v2.m3u8"), "a new, versioned master: {full}");
    let profiles: Vec<&str> =
        status["renditions"].as_array().expect("renditions").iter().filter_map(|r| r["profile"].as_str()).collect();
    assert_eq!(profiles, ["234p", "360p", "540p"]);
    let full_tree = app.fetch_tree(full).await;
    let variants: Vec<&String> = full_tree.keys().filter(|u| u.ends_with("p/index.m3u8")).collect();
    assert_eq!(variants.len(), 3, "{variants:?}");
    if let Some(start_master) = start_master {
        assert!(start_master.ends_with("/master.m3u8"), "{start_master}");
        let start_tree = app.fetch_tree(&start_master).await;
        assert_eq!(start_tree.keys().filter(|u| u.ends_with("p/index.m3u8")).count(), 2, "the floor and 360p");
    }
    let events: Vec<String> =
        app.state.db.events_for(&video_id).await.expect("db").into_iter().map(|e| e.event_type).collect();
    assert_eq!(events, ["video_upload_completed", "video_playable", "video_ready", "video_ladder_completed"]);
}

/// Runs `drain` and returns (video id, stage) in the order the jobs ran.
async fn run_order(app: &TestApp) -> Vec<(String, String)> {
    app.drain().await.into_iter().map(|r| (r.video_id.to_string(), r.stage.as_str().to_owned())).collect()
}

async fn every_creator_gets_a_start_rung_before_a_burst_or_any_ladder(backend: Backend) {
    let app = spawn_app(backend).await;
    let (busy, other) = (token("burst"), token("solo"));
    let mut burst = Vec::new();
    for _ in 0..5 {
        burst.push(app.upload(&busy, &portrait_clip(540, 960, 1)).await.1);
    }
    let (_, solo) = app.upload(&other, &portrait_clip(540, 960, 1)).await;
    let order = run_order(&app).await;
    let position = |video: &str, stage: &str| {
        order.iter().position(|(v, s)| v == video && s == stage).unwrap_or_else(|| panic!("{video} {stage}: {order:?}"))
    };
    assert!(
        position(&solo, "probe") < position(&burst[2], "probe"),
        "the second creator's start rung runs before the first creator's third video: {order:?}"
    );
    let last_phase_one = order.iter().rposition(|(_, s)| s != "ladder").expect("phase-1 jobs");
    let first_ladder = order.iter().position(|(_, s)| s == "ladder").expect("ladder jobs");
    assert!(last_phase_one < first_ladder, "every start rung before any ladder: {order:?}");
    assert_eq!(order.iter().filter(|(_, s)| s == "ladder").count(), 6);
    for video in burst.iter().chain([&solo]) {
        assert_eq!(app.status(&busy, video).await["ladder_complete"], true);
    }
}

async fn a_failed_ladder_keeps_the_video_ready_and_can_be_run_again(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.pipeline.max_attempts = 1).await;
    let owner = token("rio");
    let (_, video_id) = app.upload(&owner, &portrait_clip(540, 960, 1)).await;
    app.state.pipeline.relay(chrono::Utc::now()).await.expect("relay");
    let phase_one = app.state.pipeline.run_next().await.expect("phase 1");
    let stages: Vec<_> = phase_one.iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(stages, ["probe", "transcode", "publish_ready"], "one claim, stages handed straight on");
    let id = video_id.parse().expect("uuid");
    let record = app
        .state
        .db
        .start_ladder(id, reel::model::Generation::FIRST)
        .await
        .expect("db")
        .expect("phase 1 output recorded");
    app.exec_sql(&format!("UPDATE video_assets SET start_ladder = 'not json' WHERE video_id = '{video_id}'")).await;
    let failed = app.drain().await;
    assert_eq!(failed.iter().map(|r| r.stage.as_str()).collect::<Vec<_>>(), ["ladder"]);

    let status = app.status(&token("someone"), &video_id).await;
    assert_eq!((status["status"].as_str(), &status["ladder_complete"]), (Some("ready"), &Value::Bool(false)));
    let manifest = status["playback_manifest_url"].as_str().expect("url").to_owned();
    assert!(manifest.ends_with("/master.m3u8"), "still the start rung's master: {manifest}");
    app.fetch_tree(&manifest).await;
    let row = app.state.db.playback_row(id).await.expect("db").expect("row");
    assert_eq!(row.ladder_failed_reason.as_deref(), Some("internal_error"), "{row:?}");

    let escaped = record.replace('\'', "''");
    app.exec_sql(&format!("UPDATE video_assets SET start_ladder = '{escaped}' WHERE video_id = '{video_id}'")).await;
    let admin = token_with("ops", Role::Admin, None);
    let response = app
        .http
        .post(app.url(&format!("/v1/ops/videos/{video_id}/reprocess")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["generation"], 1, "the ladder runs again on the same generation");
    assert_eq!(app.status(&owner, &video_id).await["status"], "ready", "it never left the feed");
    let rerun = app.drain().await;
    assert_eq!(rerun.iter().map(|r| r.stage.as_str()).collect::<Vec<_>>(), ["ladder"]);
    let status = app.status(&owner, &video_id).await;
    assert_eq!(status["ladder_complete"], true, "{status}");
    let full = status["playback_manifest_url"].as_str().expect("url");
    assert!(full.ends_with("/master.v2-a2.m3u8"), "the second attempt's own master: {full}");
    app.fetch_tree(full).await;
}
