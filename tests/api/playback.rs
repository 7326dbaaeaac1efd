//! Playback acceptance: status payloads and visibility, the feed (stable pagination,
//! placeholders, prefetch under the cap) and delivery policy caps.

use std::collections::HashSet;

use reel::media::AudioPackaging;
use reel::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, error_code, noise, portrait_clip, spawn_app, spawn_app_with, token, token_with,
};
use crate::on_both_backends;

on_both_backends!(
    status_payloads_follow_the_pipeline_and_visibility_rules,
    the_feed_pages_stably_with_placeholders_and_capped_prefetch,
    caps_serve_a_distinct_master_without_the_higher_rungs,
    hints_name_every_object_of_the_start_rung_with_its_size,
    inline_playlists_carry_the_first_ready_items_start_playlists,
);

impl TestApp {
    async fn ready_video(&self, token: &str, width: u32, height: u32) -> String {
        let (_, video_id) = self.upload(token, &portrait_clip(width, height, 1)).await;
        self.drain().await;
        video_id
    }

    async fn feed_page(&self, token: &str, cursor: Option<&str>, limit: u32) -> Value {
        let path = match cursor {
            Some(cursor) => format!("/v1/feed/videos?limit={limit}&cursor={cursor}"),
            None => format!("/v1/feed/videos?limit={limit}"),
        };
        let (status, _, body) = self.get_json(token, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

async fn status_payloads_follow_the_pipeline_and_visibility_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let (owner, viewer, admin) = (token("owner"), token("viewer"), token_with("ops", Role::Admin, None));
    let (_, video_id) = app.upload(&owner, &portrait_clip(360, 640, 1)).await;
    let path = format!("/v1/videos/{video_id}");

    let (status, headers, body) = app.get_json(&owner, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "processing");
    assert!(body["poll_after_ms"].as_u64().is_some_and(|ms| ms > 0));
    assert!(body["elapsed_ms"].as_i64().is_some_and(|ms| ms >= 0));
    assert!(headers.contains_key("retry-after"), "polling hint in the header too");
    assert_eq!(app.get_json(&viewer, &path).await.0, StatusCode::NOT_FOUND, "others do not see processing videos");
    assert_eq!(app.get_json(&admin, &path).await.0, StatusCode::OK, "admins do");

    app.drain().await;
    let (status, _, body) = app.get_json(&viewer, &path).await;
    assert_eq!(status, StatusCode::OK, "a ready video is visible to any viewer");
    assert_eq!(body["status"], "ready");
    let manifest = body["playback_manifest_url"].as_str().expect("manifest url");
    assert!(
        manifest.starts_with(&app.base) && manifest.ends_with(&format!("/packaged/{video_id}/hls/master.m3u8")),
        "{manifest}"
    );
    assert!(body["thumbnail_url"].as_str().is_some_and(|url| url.ends_with("poster.jpg")));
    assert_eq!((body["width"].as_i64(), body["height"].as_i64()), (Some(360), Some(640)));
    assert!(body["duration_ms"].as_i64().is_some_and(|ms| (900..=1100).contains(&ms)));
    assert_eq!(body["renditions"][0]["profile"], "234p", "the cellular floor first");
    let master = app.http.get(manifest).send().await.expect("manifest fetch");
    assert_eq!(master.status(), StatusCode::OK, "the manifest URL is served by the origin");

    let (_, failed_id) = app.upload(&owner, &noise(4096)).await;
    app.drain().await;
    let failed_path = format!("/v1/videos/{failed_id}");
    let (status, _, body) = app.get_json(&owner, &failed_path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["status"].as_str(), body["retryable"].as_bool()), (Some("failed"), Some(false)));
    assert_eq!(body["failed_reason"], "unsupported_container");
    assert_eq!(body["failed_message"], "The file is not in a video format we accept.");
    assert_eq!(app.get_json(&viewer, &failed_path).await.0, StatusCode::NOT_FOUND);
    let (status, error) =
        error_code(app.http.get(app.url("/v1/videos/nope")).bearer_auth(&viewer).send().await.expect("request")).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    assert_eq!(app.http.get(app.url(&path)).send().await.expect("request").status(), StatusCode::UNAUTHORIZED);
}

async fn the_feed_pages_stably_with_placeholders_and_capped_prefetch(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let mut published = Vec::new();
    for _ in 0..5 {
        published.push(app.ready_video(&alice, 180, 320).await);
    }
    let (_, placeholder) = app.upload(&bob, &portrait_clip(180, 320, 1)).await;
    app.state.pipeline.relay(chrono::Utc::now()).await.expect("relay");

    let first = app.feed_page(&bob, None, 2).await;
    let items = first["items"].as_array().expect("items");
    assert_eq!(items[0]["video_id"], placeholder.as_str(), "the viewer's own processing video leads, as a placeholder");
    assert_eq!(items[0]["status"], "processing");
    assert_eq!(first["prefetch_cap"], 2);
    let hints = first["prefetch"].as_array().expect("prefetch");
    assert!(hints.len() <= 2);
    for hint in hints {
        let first_segment = hint["first_segment_url"].as_str().expect("url");
        assert!(first_segment.ends_with("/180p/seg-00001.m4s"), "only the first segment of the start rung: {hint}");
        assert!(hint["init_url"].as_str().is_some_and(|u| u.ends_with("/init.mp4")));
        assert_eq!(
            app.http.get(hint["first_segment_url"].as_str().expect("url")).send().await.expect("get").status(),
            StatusCode::OK
        );
    }
    let alice_feed = app.feed_page(&alice, None, 50).await;
    let alice_ids: Vec<&str> =
        alice_feed["items"].as_array().expect("items").iter().filter_map(|i| i["video_id"].as_str()).collect();
    assert!(!alice_ids.contains(&placeholder.as_str()), "nobody else sees another's processing video");
    assert_eq!(alice_feed["prefetch"].as_array().map(Vec::len), Some(2), "never more than the cap");

    let mut seen: Vec<String> = items.iter().filter_map(|i| i["video_id"].as_str().map(str::to_owned)).collect();
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    let late = app.ready_video(&alice, 180, 320).await;
    while let Some(next) = cursor {
        let page = app.feed_page(&bob, Some(&next), 2).await;
        seen.extend(
            page["items"].as_array().expect("items").iter().filter_map(|i| i["video_id"].as_str().map(str::to_owned)),
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no video appears twice across pages");
    for id in &published {
        assert!(seen.contains(id), "no video published before paging is skipped");
    }
    assert!(!seen.contains(&late), "a video published mid-paging lands above the cursor, not in later pages");

    let admin = token_with("ops", Role::Admin, None);
    let defaults = json!({"feed_max_short_side": 720, "low_conversion_max_short_side": 540, "prefetch_cap": 1});
    let response = app
        .http
        .put(app.url("/v1/ops/delivery-policy"))
        .bearer_auth(&admin)
        .json(&defaults)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let capped = app.feed_page(&alice, None, 10).await;
    assert_eq!((capped["prefetch_cap"].as_u64(), capped["prefetch"].as_array().map(Vec::len)), (Some(1), Some(1)));
    let (status, error) = error_code(
        app.http.get(app.url("/v1/feed/videos?cursor=%%%")).bearer_auth(&alice).send().await.expect("request"),
    )
    .await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_cursor")));
}

async fn caps_serve_a_distinct_master_without_the_higher_rungs(backend: Backend) {
    let app = spawn_app(backend).await;
    let (creator, admin) = (token("creator"), token_with("ops", Role::Admin, None));
    let video_id = app.ready_video(&creator, 720, 1280).await;
    let path = format!("/v1/videos/{video_id}");
    let master_of = |body: &Value| body["playback_manifest_url"].as_str().expect("manifest").to_owned();
    let heights = |master: &str| -> Vec<u32> {
        master
            .lines()
            .filter_map(|l| l.split("RESOLUTION=").nth(1))
            .filter_map(|r| r.split(',').next()?.split('x').next()?.parse().ok())
            .collect()
    };

    let default = app.get_json(&token("viewer"), &path).await.2;
    let full = master_of(&default);
    assert!(full.ends_with("/master.v2.m3u8"), "the full ladder's versioned master: {full}");
    let full_text = app.http.get(&full).send().await.expect("get").text().await.expect("text");
    assert_eq!(heights(&full_text), [234, 360, 540, 720], "the default ceiling is 720p");

    let cohort = token_with("viewer2", Role::User, Some("low_conversion"));
    let low = app.get_json(&cohort, &path).await.2;
    let capped = master_of(&low);
    assert!(capped.ends_with("/master.v2~540p.m3u8"), "a distinct cacheable URL per cap: {capped}");
    let capped_text = app.http.get(&capped).send().await.expect("get").text().await.expect("text");
    assert_eq!(
        heights(&capped_text),
        [234, 360, 540],
        "no rung above 540p, the floor kept, for the low-conversion cohort"
    );
    assert_eq!(low["renditions"].as_array().map(Vec::len), Some(3));

    let policy_url = app.url(&format!("/v1/ops/videos/{video_id}/policy"));
    let policy =
        json!({"max_bitrate_kbps": 1200, "prefetch_priority": 9, "cache_tier_hint": "hot", "playback": "public"});
    assert_eq!(
        app.http.put(&policy_url).bearer_auth(&creator).json(&policy).send().await.expect("request").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.http.put(&policy_url).bearer_auth(&admin).json(&policy).send().await.expect("request").status(),
        StatusCode::OK
    );
    let stored: Value =
        app.http.get(&policy_url).bearer_auth(&admin).send().await.expect("request").json().await.expect("json");
    assert_eq!(stored, policy);
    let limited = app.get_json(&token("viewer"), &path).await.2;
    assert!(master_of(&limited).ends_with("/master.v2~360p.m3u8"), "the per-video bitrate cap applies");
    assert_eq!(
        (limited["delivery"]["cache_tier_hint"].as_str(), limited["delivery"]["prefetch_priority"].as_i64()),
        (Some("hot"), Some(9))
    );
    let bad = json!({"cache_tier_hint": "lukewarm"});
    let (status, _) =
        error_code(app.http.put(&policy_url).bearer_auth(&admin).json(&bad).send().await.expect("request")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_urls_point_at_the_cdn_when_one_is_configured() {
    let app = crate::helpers::spawn_app_with(Backend::SqliteFs, |config| {
        config.delivery.public_base_url = Some("https://cdn.example/reel/".into());
    })
    .await;
    let video_id = app.ready_video(&token("cdn_creator"), 180, 320).await;
    let (_, _, body) = app.get_json(&token("viewer"), &format!("/v1/videos/{video_id}")).await;
    assert_eq!(body["playback_manifest_url"], format!("https://cdn.example/reel/packaged/{video_id}/hls/master.m3u8"));
    assert_eq!(body["thumbnail_url"], format!("https://cdn.example/reel/packaged/{video_id}/hls/poster.jpg"));
}

/// The feed's hint for the second ready item names the start rung's master, media playlist(s),
/// init and first segment(s) (audio too when separate), each with the size the origin serves.
async fn hints_name_every_object_of_the_start_rung_with_its_size(backend: Backend) {
    for audio in [AudioPackaging::Muxed, AudioPackaging::Separate] {
        let app = spawn_app_with(backend, |config| config.pipeline.ladder.audio = audio).await;
        let (alice, bob) = (token("alice"), token("bob"));
        for _ in 0..3 {
            app.ready_video(&alice, 360, 640).await;
        }
        let feed = app.feed_page(&bob, None, 10).await;
        let second = feed["items"][1]["video_id"].as_str().expect("a second item").to_owned();
        let hints = feed["prefetch"].as_array().expect("prefetch");
        assert_eq!(hints.len(), 2, "{audio:?}: the cap");
        let hint = hints.iter().find(|h| h["video_id"] == second.as_str()).expect("the second item is hinted");
        let objects = hint["objects"].as_array().expect("objects");
        let kinds: Vec<(&str, bool)> =
            objects.iter().map(|o| (o["kind"].as_str().unwrap_or_default(), o["audio"] == true)).collect();
        let mut expected = vec![("master", false), ("playlist", false), ("init", false), ("segment", false)];
        if audio == AudioPackaging::Separate {
            expected.extend([("playlist", true), ("init", true), ("segment", true)]);
        }
        assert_eq!(kinds, expected, "{audio:?}: {hint}");
        assert_eq!(objects[0]["url"], feed["items"][1]["playback_manifest_url"], "the master the item plays");
        assert_eq!(hint["manifest_url"], objects[0]["url"]);
        assert_eq!(hint["init_url"], objects[2]["url"]);
        assert_eq!(hint["first_segment_url"], objects[3]["url"]);
        let mut total = 0;
        for object in objects {
            let url = object["url"].as_str().expect("url");
            let response = app.http.get(url).send().await.expect("get");
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            let body = response.bytes().await.expect("body");
            assert_eq!(object["bytes"].as_u64(), Some(body.len() as u64), "{url}");
            total += body.len() as u64;
            let text = String::from_utf8_lossy(&body);
            if object["kind"] == "master" {
                let first_variant = text.lines().skip_while(|l| !l.starts_with("#EXT-X-STREAM-INF")).nth(1);
                let playlist = objects[1]["url"].as_str().expect("playlist url");
                assert!(first_variant.is_some_and(|uri| playlist.ends_with(uri)), "the first variant: {text}");
            }
            if object["kind"] == "playlist" {
                let first_segment = text.lines().find(|l| !l.starts_with('#') && !l.is_empty()).expect("a segment");
                assert!(
                    objects.iter().any(|o| o["kind"] == "segment"
                        && o["url"].as_str().is_some_and(|u| u.ends_with(&format!("/{first_segment}")))),
                    "{audio:?}: the first segment {first_segment} of {url} is hinted"
                );
                assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{text}");
            }
        }
        assert_eq!(hint["prefetch_bytes_total"].as_u64(), Some(total));
        assert!(
            objects
                .iter()
                .all(|o| o["kind"] != "segment" || o["url"].as_str().is_some_and(|u| u.ends_with("seg-00001.m4s")))
        );
    }
}

async fn inline_playlists_carry_the_first_ready_items_start_playlists(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (token("alice"), token("bob"));
    for _ in 0..2 {
        app.ready_video(&alice, 180, 320).await;
    }
    let plain = app.feed_page(&bob, None, 10).await;
    assert!(plain.get("inline_playlists").is_none(), "opt-in only");
    let (status, _, page) = app.get_json(&bob, "/v1/feed/videos?limit=10&inline_playlists=true").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let first = page["items"][0]["video_id"].as_str().expect("first");
    let inline = page["inline_playlists"].as_array().expect("inline playlists");
    assert_eq!(inline.len(), 2, "the master and the start rung's media playlist: {page}");
    assert_eq!(inline[0]["url"], page["items"][0]["playback_manifest_url"]);
    for playlist in inline {
        assert_eq!(playlist["video_id"], first);
        let url = playlist["url"].as_str().expect("url");
        let served = app.http.get(url).send().await.expect("get").text().await.expect("text");
        assert_eq!(playlist["text"].as_str(), Some(served.as_str()), "byte for byte as served: {url}");
    }
}
