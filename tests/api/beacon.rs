//! Beacon, metrics and OpenAPI acceptance.

use reel::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, MIB, TestApp, error_code, fake_mp4, portrait_clip, spawn_app, spawn_app_with, token, token_with,
};
use crate::on_both_backends;

on_both_backends!(the_beacon_validates_counts_and_feeds_the_score, the_beacon_counts_visible_videos_once_per_view);

impl TestApp {
    async fn beacon(&self, token: &str, body: Value) -> reqwest::Response {
        self.http.post(self.url("/v1/playback/events")).bearer_auth(token).json(&body).send().await.expect("request")
    }

    async fn metrics_text(&self) -> String {
        self.http.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("text")
    }
}

fn sample(metrics: &str, name: &str) -> f64 {
    metrics.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

async fn the_beacon_validates_counts_and_feeds_the_score(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.delivery.beacon_events_per_minute = 12).await;
    let viewer = token("viewer");
    let (_, video_id) = app.upload(&token("maker"), &portrait_clip(180, 320, 1)).await;
    app.drain().await;

    let bad = [
        (json!({"events": []}), "invalid_events"),
        (
            json!({"events": vec![json!({"type": "startup", "video_id": video_id, "startup_ms": 700}); 101]}),
            "invalid_events",
        ),
        (json!({"events": [{"type": "teleport", "video_id": video_id}]}), "invalid_body"),
        (json!({"events": [{"type": "startup", "startup_ms": 700}]}), "invalid_body"),
        (
            json!({"events": [{"type": "progress", "video_id": video_id, "position_ms": 9, "duration_ms": 90_000_000}]}),
            "invalid_events",
        ),
        (json!({"evts": []}), "invalid_body"),
    ];
    for (body, code) in bad {
        let (status, error) = error_code(app.beacon(&viewer, body.clone()).await).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}");
    }

    let before = app.metrics_text().await;
    let batch = json!({"events": [
        {"type": "startup", "video_id": video_id, "startup_ms": 640},
        {"type": "progress", "video_id": video_id, "position_ms": 500, "duration_ms": 1000},
        {"type": "support_click", "video_id": video_id},
        {"type": "rebuffer", "video_id": video_id, "duration_ms": 120},
        {"type": "startup", "video_id": uuid::Uuid::now_v7(), "startup_ms": 500},
        {"type": "progress", "video_id": video_id, "position_ms": 9_000, "duration_ms": 1_000},
    ]});
    let response = app.beacon(&viewer, batch).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let receipt: Value = response.json().await.expect("json");
    assert_eq!(
        (receipt["accepted"].as_u64(), receipt["ignored"].as_u64()),
        (Some(4), Some(2)),
        "unknown videos and progress past the duration are ignored, not errors"
    );
    let after = app.metrics_text().await;
    assert!(sample(&after, "first_play_startup_ms_count") >= sample(&before, "first_play_startup_ms_count") + 1.0);
    assert!(sample(&after, "beacon_events_ignored_total") >= sample(&before, "beacon_events_ignored_total") + 1.0);

    let inputs = app.state.db.score_inputs(video_id.parse().expect("uuid")).await.expect("db");
    assert_eq!((inputs.early_watch_through, inputs.early_support_click_rate), (Some(0.5), Some(1.0)));
    let row = app.state.db.playback_row(video_id.parse().expect("uuid")).await.expect("db").expect("row");
    assert!(
        (row.value_score - (0.3 * 0.5 + 0.2 * 1.0)).abs() < 1e-9,
        "engagement lifts the value score: {}",
        row.value_score
    );

    let burst = json!({"events": vec![json!({"type": "complete", "video_id": video_id}); 8]});
    let response = app.beacon(&viewer, burst).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "12 events per minute per viewer");
    assert!(response.headers().contains_key("retry-after"));
    let other =
        app.beacon(&token("someone_else"), json!({"events": [{"type": "complete", "video_id": video_id}]})).await;
    assert_eq!(other.status(), StatusCode::ACCEPTED, "the limit is per viewer");
}

/// Sends `events` and returns the receipt's `(accepted, ignored)`.
async fn receipt(app: &TestApp, token: &str, events: Value) -> (u64, u64) {
    let response = app.beacon(token, json!({ "events": events })).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.expect("json");
    (body["accepted"].as_u64().expect("accepted"), body["ignored"].as_u64().expect("ignored"))
}

/// The video's `(early_watch_through, early_support_click_rate)`.
async fn rates(app: &TestApp, video_id: &str) -> (Option<f64>, Option<f64>) {
    let inputs = app.state.db.score_inputs(video_id.parse().expect("uuid")).await.expect("db");
    (inputs.early_watch_through, inputs.early_support_click_rate)
}

async fn the_beacon_counts_visible_videos_once_per_view(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.delivery.beacon_events_per_minute = 1000).await;
    let maker = token("maker");
    let (_, ready) = app.upload(&maker, &portrait_clip(180, 320, 1)).await;
    app.drain().await;
    let (_, hidden) = app.upload(&maker, &fake_mp4(MIB)).await;
    let viewer = token("viewer");

    let probe = |video: &str| json!([{"type": "startup", "video_id": video, "startup_ms": 10}, {"type": "support_click", "video_id": video}]);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(receipt(&app, &viewer, probe(&hidden)).await, (0, 2), "another creator's processing video is ignored");
    assert_eq!(
        receipt(&app, &viewer, probe(&hidden)).await,
        receipt(&app, &viewer, probe(&unknown)).await,
        "a hidden video answers like an unknown one"
    );
    assert_eq!(rates(&app, &hidden).await, (None, None), "nothing was counted for the hidden video");
    assert_eq!(receipt(&app, &maker, probe(&hidden)).await, (2, 0), "a creator may report on their own video");

    let first_view = json!([
        {"type": "startup", "video_id": ready, "startup_ms": 600},
        {"type": "progress", "video_id": ready, "position_ms": 500, "duration_ms": 1000},
    ]);
    assert_eq!(receipt(&app, &viewer, first_view.clone()).await, (2, 0));
    assert_eq!(receipt(&app, &viewer, first_view).await, (2, 0), "a repeat is accepted…");
    assert_eq!(rates(&app, &ready).await, (Some(0.5), Some(0.0)), "…but counts once");
    let clicks = json!(vec![json!({"type": "support_click", "video_id": ready}); 5]);
    receipt(&app, &viewer, clicks.clone()).await;
    receipt(&app, &viewer, clicks).await;
    assert_eq!(rates(&app, &ready).await, (Some(0.5), Some(1.0)), "one support click per view");

    let view = uuid::Uuid::now_v7();
    let second_view = json!([
        {"type": "startup", "video_id": ready, "startup_ms": 600, "view_id": view},
        {"type": "progress", "video_id": ready, "position_ms": 250, "duration_ms": 1000, "view_id": view},
        {"type": "progress", "video_id": ready, "position_ms": 100, "duration_ms": 1000, "view_id": view},
    ]);
    let together = futures::future::join_all((0..4).map(|_| receipt(&app, &viewer, second_view.clone()))).await;
    assert!(together.iter().all(|r| *r == (3, 0)), "{together:?}");
    assert_eq!(
        rates(&app, &ready).await,
        (Some(0.375), Some(0.5)),
        "a second view counts once, even sent concurrently"
    );
    let complete = json!([{"type": "complete", "video_id": ready, "view_id": view}]);
    receipt(&app, &viewer, complete.clone()).await;
    receipt(&app, &viewer, complete).await;
    assert_eq!(rates(&app, &ready).await, (Some(0.75), Some(0.5)), "complete moves the view to the end, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_the_first_class_latencies() {
    let app = spawn_app(Backend::SqliteFs).await;
    app.upload(&token("mia"), &portrait_clip(180, 320, 1)).await;
    app.drain().await;
    let response = app.http.get(app.url("/metrics")).send().await.expect("metrics");
    assert!(response.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/plain"));
    let text = response.text().await.expect("text");
    for name in [
        "ingest_to_complete_ms_bucket",
        "complete_to_ready_ms_bucket",
        "pipeline_stage_ms_bucket{stage=\"transcode\",outcome=\"done\"",
        "pipeline_queue_depth",
        "http_request_duration_ms_bucket{method=\"POST\",route=\"/v1/videos/uploads/{id}/complete\"",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_only_served_ones() {
    let app = spawn_app(Backend::SqliteFs).await;
    let spec: Value = app.http.get(app.url("/openapi.json")).send().await.expect("spec").json().await.expect("json");
    let paths = spec["paths"].as_object().expect("paths");
    let expected = [
        ("/v1/videos/uploads", "post"),
        ("/v1/videos/uploads/{id}", "get"),
        ("/v1/videos/uploads/{id}", "delete"),
        ("/v1/videos/uploads/{id}/parts", "post"),
        ("/v1/videos/uploads/{id}/parts/{part}", "put"),
        ("/v1/videos/uploads/{id}/complete", "post"),
        ("/v1/videos/{id}", "get"),
        ("/v1/feed/videos", "get"),
        ("/v1/playback/events", "post"),
        ("/v1/ops/videos", "get"),
        ("/v1/ops/videos/{id}/reprocess", "post"),
        ("/v1/ops/videos/{id}/policy", "get"),
        ("/v1/ops/videos/{id}/policy", "put"),
        ("/v1/ops/delivery-policy", "get"),
        ("/v1/ops/delivery-policy", "put"),
        ("/v1/ops/creators/{id}", "put"),
        ("/v1/ops/webhooks", "post"),
        ("/v1/ops/webhooks", "get"),
        ("/v1/ops/webhooks/{id}", "get"),
        ("/v1/ops/webhooks/{id}", "patch"),
        ("/v1/ops/webhooks/{id}", "delete"),
        ("/v1/ops/webhooks/{id}/rotate-secret", "post"),
        ("/v1/ops/webhooks/{id}/deliveries", "get"),
        ("/v1/ops/webhooks/{id}/deliveries/{delivery_id}/retry", "post"),
        ("/origin/packaged/{video_id}/hls/{file}", "get"),
        ("/origin/packaged/{video_id}/hls/{dir}/{file}", "get"),
        ("/origin/packaged/{video_id}/hls/{outer}/{inner}/{file}", "get"),
        ("/origin/packaged/{video_id}/hls/{generation}/{attempt}/{rendition}/{file}", "get"),
        ("/origin/t/{token}/packaged/{video_id}/hls/{file}", "get"),
        ("/origin/t/{token}/packaged/{video_id}/hls/{dir}/{file}", "get"),
        ("/origin/t/{token}/packaged/{video_id}/hls/{outer}/{inner}/{file}", "get"),
        ("/origin/t/{token}/packaged/{video_id}/hls/{generation}/{attempt}/{rendition}/{file}", "get"),
        ("/metrics", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/openapi.json", "get"),
    ];
    for (path, method) in expected {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not documented");
    }
    let admin = token_with("ops", Role::Admin, None);
    let mut documented = 0;
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let concrete = path
                .replace("{id}", &uuid::Uuid::now_v7().to_string())
                .replace("{part}", "1")
                .replace("{delivery_id}", &uuid::Uuid::now_v7().to_string())
                .replace("{token}", "a.b.c")
                .replace("{video_id}", &uuid::Uuid::now_v7().to_string())
                .replace("{file}", "master.m3u8")
                .replace("{dir}", "720p")
                .replace("{generation}", "g2")
                .replace("{outer}", "g2")
                .replace("{inner}", "720p")
                .replace("{attempt}", "e2")
                .replace("{rendition}", "720p");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let response =
                app.http.request(method.clone(), app.url(&concrete)).bearer_auth(&admin).send().await.expect("request");
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(!body.contains("route not found"), "{method} {path} is documented but not served");
            documented += 1;
        }
    }
    assert_eq!(documented, expected.len(), "the document lists exactly the served routes");
}
