//! Per-user quotas: counted in the shared database, so two server processes agree, and refused
//! with a structured `quota_exceeded` error, `429` (or `507` for reserved bytes) and `Retry-After`.

use reel::app::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Backend, MIB, TestApp, fake_mp4, spawn_app_with, token};
use crate::on_both_backends;

on_both_backends!(
    open_sessions_and_reserved_bytes_are_bounded_across_processes,
    completions_per_hour_and_processing_videos_are_bounded,
);

/// A second server on the same database and bucket; stops when the token is cancelled.
async fn sibling(app: &TestApp) -> (String, CancellationToken) {
    let sibling = Application::build(app.config.clone(), false).await.expect("sibling builds");
    let base = format!("http://{}", sibling.local_addr().expect("bound"));
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move { sibling.run_until_stopped(async move { stopped.cancelled().await }).await });
    (base, stop)
}

async fn assert_quota(response: reqwest::Response, status: StatusCode, quota: &str) -> Option<u64> {
    assert_eq!(response.status(), status);
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").parse::<u64>().expect("Retry-After is seconds"));
    let body: Value = response.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    assert_eq!(body["error"]["details"]["quota"], quota, "{body}");
    assert!(body["error"]["details"]["limit"].is_u64(), "{body}");
    retry_after
}

fn session_of(size: usize) -> Value {
    json!({"filename": "clip.mp4", "content_type": "video/mp4", "size_bytes": size})
}

async fn open_sessions_and_reserved_bytes_are_bounded_across_processes(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.quotas.open_uploads = 3;
        config.quotas.reserved_bytes = 10 * MIB as u64;
    })
    .await;
    let (other, stop) = sibling(&app).await;
    let ann = token("ann");

    let attempts = (0..8).map(|i| {
        let base = if i % 2 == 0 { app.base.clone() } else { other.clone() };
        let request = app.http.post(format!("{base}/v1/videos/uploads")).bearer_auth(&ann).json(&session_of(MIB));
        async move { request.send().await.expect("request") }
    });
    let responses = futures::future::join_all(attempts).await;
    let mut created = Vec::new();
    for response in responses {
        if response.status() == StatusCode::CREATED {
            let session: Value = response.json().await.expect("json");
            created.push(session["upload_id"].as_str().expect("id").to_owned());
        } else {
            let retry_after = assert_quota(response, StatusCode::TOO_MANY_REQUESTS, "open_uploads").await;
            let seconds = retry_after.expect("Retry-After: when the earliest session expires");
            assert!(seconds > 0 && seconds <= 24 * 3600, "Retry-After {seconds}");
        }
    }
    assert_eq!(created.len(), 3, "both servers together admit exactly the quota");

    let ben = token("ben");
    assert_eq!(app.create_upload(&ben, session_of(6 * MIB)).await.status(), StatusCode::CREATED);
    let refused = app.create_upload(&ben, session_of(5 * MIB)).await;
    assert_quota(refused, StatusCode::INSUFFICIENT_STORAGE, "reserved_bytes").await;
    assert_eq!(app.create_upload(&ben, session_of(4 * MIB)).await.status(), StatusCode::CREATED);

    assert_eq!(app.abort(&ann, &created[0]).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.create_upload(&ann, session_of(MIB)).await.status(), StatusCode::CREATED, "an abort frees a slot");
    stop.cancel();
}

/// Uploads `data` in one part and asks for completion.
async fn upload_and_complete(app: &TestApp, token: &str, data: &[u8]) -> (String, reqwest::Response) {
    let session = app.start_upload(token, data, None).await;
    let id = session["upload_id"].as_str().expect("id").to_owned();
    let part = app.send_part(token, &session["parts"][0], data.to_vec(), &[]).await;
    assert_eq!(part.status(), StatusCode::OK);
    let response = app.complete(token, &id).await;
    (id, response)
}

async fn completions_per_hour_and_processing_videos_are_bounded(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.quotas.processing_videos = 2;
        config.quotas.completed_per_hour = 3;
    })
    .await;
    let cy = token("cy");
    let data = fake_mp4(MIB);
    for _ in 0..2 {
        assert_eq!(upload_and_complete(&app, &cy, &data).await.1.status(), StatusCode::ACCEPTED);
    }
    let (third, refused) = upload_and_complete(&app, &cy, &data).await;
    let retry_after = assert_quota(refused, StatusCode::TOO_MANY_REQUESTS, "processing_videos").await;
    assert!(retry_after.is_some_and(|s| s > 0), "Retry-After on the processing quota");
    let session: Value = app.get_upload(&cy, &third).await.json().await.expect("json");
    assert_eq!(session["status"], "uploading", "a refused completion leaves the session open");
    assert_eq!(upload_and_complete(&app, &token("dee"), &data).await.1.status(), StatusCode::ACCEPTED);

    app.exec_sql("UPDATE video_assets SET status = 'failed' WHERE creator_user_id = 'cy'").await;
    assert_eq!(
        app.complete(&cy, &third).await.status(),
        StatusCode::ACCEPTED,
        "the retry succeeds once a video is done"
    );
    app.exec_sql("UPDATE video_assets SET status = 'failed' WHERE creator_user_id = 'cy'").await;

    let (_, refused) = upload_and_complete(&app, &cy, &data).await;
    let retry_after = assert_quota(refused, StatusCode::TOO_MANY_REQUESTS, "completed_uploads_per_hour").await;
    let seconds = retry_after.expect("Retry-After: when the oldest completion leaves the hour");
    assert!(seconds > 3000 && seconds <= 3600, "Retry-After {seconds}");
}
