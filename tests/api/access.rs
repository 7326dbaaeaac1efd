//! Playback access: the origin serves anonymously only the published generation of a ready,
//! public video; signed videos and unpublished previews need a valid playback token.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reel::model::{PlaybackAccess, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, portrait_clip, spawn_app, spawn_app_with, token, token_with};
use crate::on_both_backends;

on_both_backends!(
    only_the_published_generation_plays_anonymously,
    signed_videos_play_only_with_a_valid_token,
    a_creator_reaches_an_unpublished_preview_only_through_a_signed_url,
);

impl TestApp {
    async fn origin_status(&self, url: &str) -> StatusCode {
        self.http.get(url).send().await.expect("origin request").status()
    }

    fn bare(&self, key: &str) -> String {
        self.url(&format!("/origin/{key}"))
    }

    /// A token for `sub` signed with the newest stored key, with explicit claims.
    async fn craft(&self, kid: Option<&str>, claims: Value) -> String {
        let keys = self.state.db.playback_keys().await.expect("keys");
        let key = keys.first().expect("a playback key");
        let der = STANDARD.decode(&key.private_key).expect("base64");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.unwrap_or(&key.kid).to_owned());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&der)).expect("sign")
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn only_the_published_generation_plays_anonymously(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = token_with("ops", Role::Admin, None);
    let (_, video_id) = app.upload(&token("ana"), &portrait_clip(360, 640, 2)).await;
    let root = format!("packaged/{video_id}/hls");
    assert_eq!(app.origin_status(&app.bare(&format!("{root}/master.m3u8"))).await, StatusCode::NOT_FOUND);
    app.drain().await;

    let reprocess = app.url(&format!("/v1/ops/videos/{video_id}/reprocess"));
    let response = app.http.post(&reprocess).bearer_auth(&admin).send().await.expect("reprocess");
    assert!(response.status().is_success(), "{}", response.status());
    for file in ["master.m3u8", "360p/index.m3u8", "360p/seg-00001.m4s", "poster.jpg"] {
        let url = app.bare(&format!("{root}/{file}"));
        assert_eq!(app.origin_status(&url).await, StatusCode::NOT_FOUND, "{file} while its video processes");
    }
    app.drain().await;
    for file in ["master.m3u8", "360p/index.m3u8", "360p/seg-00001.m4s"] {
        let url = app.bare(&format!("{root}/g2/{file}"));
        assert_eq!(app.origin_status(&url).await, StatusCode::OK, "published {file}");
        let superseded = app.bare(&format!("{root}/{file}"));
        assert_eq!(app.origin_status(&superseded).await, StatusCode::NOT_FOUND, "superseded {file}");
    }
    let status = app.get_json(&token("viewer"), &format!("/v1/videos/{video_id}")).await.2;
    let manifest = status["playback_manifest_url"].as_str().expect("manifest");
    assert!(!manifest.contains("/t/"), "a public video's URL is bare: {manifest}");
    assert_eq!(app.origin_status(manifest).await, StatusCode::OK);

    let (_, failed) = app.upload(&token("ana"), &portrait_clip(360, 640, 1)).await;
    app.drain().await;
    app.exec_sql(&format!("UPDATE video_assets SET status = 'failed' WHERE video_id = '{failed}'")).await;
    let url = app.bare(&format!("packaged/{failed}/hls/360p/seg-00001.m4s"));
    assert_eq!(app.origin_status(&url).await, StatusCode::NOT_FOUND, "a failed video's objects");
    assert_eq!(app.origin_status(&app.bare("packaged/not-a-video/hls/master.m3u8")).await, StatusCode::NOT_FOUND);
}

async fn signed_videos_play_only_with_a_valid_token(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.delivery.playback = PlaybackAccess::Signed).await;
    let (_, video_id) = app.upload(&token("ana"), &portrait_clip(360, 640, 2)).await;
    let (_, other) = app.upload(&token("ana"), &portrait_clip(360, 640, 1)).await;
    app.drain().await;
    let root = format!("packaged/{video_id}/hls");

    let status = app.get_json(&token("viewer"), &format!("/v1/videos/{video_id}")).await.2;
    let manifest = status["playback_manifest_url"].as_str().expect("manifest").to_owned();
    let thumbnail = status["thumbnail_url"].as_str().expect("thumbnail").to_owned();
    assert!(manifest.contains("/origin/t/"), "a signed URL: {manifest}");
    let tree = app.fetch_tree(&manifest).await;
    assert!(tree.keys().any(|url| url.ends_with(".m4s")), "segments play through the token prefix");
    assert_eq!(app.origin_status(&thumbnail).await, StatusCode::OK);
    let feed = app.get_json(&token("viewer"), "/v1/feed/videos?limit=5").await.2;
    for item in feed["items"].as_array().expect("items") {
        assert!(item["playback_manifest_url"].as_str().is_some_and(|u| u.contains("/origin/t/")), "{item}");
    }
    for hint in feed["prefetch"].as_array().expect("prefetch") {
        for field in ["manifest_url", "init_url", "first_segment_url"] {
            let url = hint[field].as_str().expect("url");
            assert_eq!(app.origin_status(url).await, StatusCode::OK, "prefetch {field}: {url}");
        }
    }

    let segment = "360p/seg-00001.m4s";
    let signed = |token: &str, file: &str| app.url(&format!("/origin/t/{token}/{root}/{file}"));
    let valid = json!({"sub": video_id, "exp": now() + 600, "nbf": now() - 1});
    let good = app.craft(None, valid.clone()).await;
    assert_eq!(app.origin_status(&signed(&good, segment)).await, StatusCode::OK);
    let mut tampered = good.clone().into_bytes();
    let at = good.find('.').expect("jwt") + 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let cases = [
        ("expired", app.craft(None, json!({"sub": video_id, "exp": now() - 60, "nbf": now() - 120})).await),
        ("not yet valid", app.craft(None, json!({"sub": video_id, "exp": now() + 600, "nbf": now() + 300})).await),
        ("wrong kid", app.craft(Some("unknown"), valid.clone()).await),
        ("wrong video", app.craft(None, json!({"sub": other, "exp": now() + 600, "nbf": now() - 1})).await),
        ("tampered", tampered),
        ("garbage", "a.b.c".to_owned()),
    ];
    for (case, token) in &cases {
        for file in ["master.m3u8", "360p/index.m3u8", segment] {
            assert_eq!(app.origin_status(&signed(token, file)).await, StatusCode::FORBIDDEN, "{case} token, {file}");
        }
    }
    for file in ["master.m3u8", "360p/index.m3u8", segment] {
        assert_eq!(app.origin_status(&app.bare(&format!("{root}/{file}"))).await, StatusCode::FORBIDDEN, "no token");
    }
    let capped = app.craft(None, json!({"sub": video_id, "exp": now() + 600, "nbf": now(), "cap": 234})).await;
    for (file, expected) in [
        ("master.m3u8", StatusCode::FORBIDDEN),
        ("master~360p.m3u8", StatusCode::FORBIDDEN),
        ("360p/index.m3u8", StatusCode::FORBIDDEN),
        (segment, StatusCode::FORBIDDEN),
        ("master~234p.m3u8", StatusCode::OK),
        ("234p/seg-00001.m4s", StatusCode::OK),
    ] {
        assert_eq!(app.origin_status(&signed(&capped, file)).await, expected, "a token capped at 234p, {file}");
    }

    let old_kid = app.state.db.playback_keys().await.expect("keys")[0].kid.clone();
    let new_kid = app.state.delivery.keys().rotate().await.expect("rotate");
    assert_ne!(old_kid, new_kid);
    assert_eq!(app.origin_status(&signed(&good, segment)).await, StatusCode::OK, "old keys keep verifying");
    let status = app.get_json(&token("viewer"), &format!("/v1/videos/{video_id}")).await.2;
    let rotated = status["playback_manifest_url"].as_str().expect("manifest");
    let token_part = rotated.split("/t/").nth(1).and_then(|rest| rest.split('/').next()).expect("token");
    assert_eq!(jsonwebtoken::decode_header(token_part).expect("header").kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(app.origin_status(rotated).await, StatusCode::OK);
}

async fn a_creator_reaches_an_unpublished_preview_only_through_a_signed_url(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = token("pia");
    let (_, video_id) = app.upload(&owner, &portrait_clip(360, 640, 2)).await;
    app.drain().await;
    // The video back in processing, its start rungs playable: a preview, as phase 1 leaves it.
    app.exec_sql(&format!("UPDATE video_assets SET status = 'processing' WHERE video_id = '{video_id}'")).await;
    let status = app.status(&owner, &video_id).await;
    assert_eq!(status["status"], "processing", "{status}");
    let preview = status["playback_manifest_url"].as_str().expect("a preview URL").to_owned();
    assert!(preview.contains("/origin/t/") && preview.ends_with("/preview.m3u8"), "{preview}");
    let (code, _, _) = app.get_json(&token("quinn"), &format!("/v1/videos/{video_id}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "only the creator sees it");

    let tree = app.fetch_tree(&preview).await;
    assert!(tree.keys().any(|url| url.ends_with(".m4s")));
    let bare = preview.replacen(
        &format!("/t/{}", preview.split("/t/").nth(1).and_then(|r| r.split('/').next()).expect("token")),
        "",
        1,
    );
    assert!(bare.ends_with(&format!("/origin/packaged/{video_id}/hls/preview.m3u8")), "{bare}");
    assert_eq!(app.origin_status(&bare).await, StatusCode::NOT_FOUND, "the bare preview URL");
    let segment = app.bare(&format!("packaged/{video_id}/hls/360p/seg-00001.m4s"));
    assert_eq!(app.origin_status(&segment).await, StatusCode::NOT_FOUND, "a bare preview segment");
    let policy = app.url(&format!("/v1/ops/videos/{video_id}/policy"));
    let admin = token_with("ops", Role::Admin, None);
    let stored: Value =
        app.http.get(&policy).bearer_auth(&admin).send().await.expect("policy").json().await.expect("json");
    assert_eq!(stored["playback"], Value::Null, "the global default applies");
}
