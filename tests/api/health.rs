//! Operations endpoints and resilience: health, readiness, database outages.

use std::net::SocketAddr;
use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, PgDatabase, TcpProxy, error_code, spawn_app, spawn_app_with, token};
use crate::on_both_backends;

on_both_backends!(
    ready_when_every_dependency_answers,
    unready_names_the_failing_check,
    readiness_is_cached_and_runs_no_tool_per_request
);

async fn ready_when_every_dependency_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = app.http.get(app.url("/healthz")).send().await.expect("request");
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.http.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("json");
    for check in ["database", "object_store", "ffmpeg", "ffprobe"] {
        assert_eq!(body["checks"][check], "ok", "{check}");
    }
}

async fn unready_names_the_failing_check(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.media.ffprobe = PathBuf::from("/nonexistent/ffprobe")).await;
    let ready = app.http.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "unready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["ffprobe"], "unavailable", "a fixed word; the cause goes to the log");
}

async fn readiness_is_cached_and_runs_no_tool_per_request(backend: Backend) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = dir.path().join("runs");
    let counting = dir.path().join("ffprobe");
    std::fs::write(&counting, format!("#!/bin/sh\necho run >> '{}'\nexec ffprobe \"$@\"\n", runs.display()))
        .expect("script");
    std::fs::set_permissions(&counting, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let app = spawn_app_with(backend, |config| config.media.ffprobe = counting.clone()).await;
    let polls = (0..20).map(|_| app.http.get(app.url("/readyz")).send());
    for response in futures::future::join_all(polls).await {
        let response = response.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["checks"]["ffprobe"], "ok");
    }
    let count = std::fs::read_to_string(&runs).unwrap_or_default().lines().count();
    assert_eq!(count, 1, "twenty polls within the cache period ran ffprobe once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_answer_a_structured_404() {
    let app = spawn_app(Backend::SqliteFs).await;
    let (status, error) = error_code(app.http.get(app.url("/v1/nope")).send().await.expect("request")).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_recovers_by_itself() {
    let pg = PgDatabase::create().await;
    let mut url = url::Url::parse(&pg.url).expect("url");
    let target: SocketAddr =
        format!("{}:{}", url.host_str().expect("host"), url.port().unwrap_or(5432)).parse().expect("addr");
    let proxy = TcpProxy::start(target).await;
    url.set_port(Some(proxy.addr.port())).expect("port");
    let app = spawn_app_with(Backend::PostgresS3, |config| {
        config.database.url = url.to_string();
        config.database.acquire_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let pat = token("pat");
    let missing = format!("/v1/videos/uploads/{}", uuid::Uuid::now_v7());
    let get = || app.http.get(app.url(&missing)).bearer_auth(&pat).send();
    assert_eq!(get().await.expect("request").status(), StatusCode::NOT_FOUND, "the database answers through the proxy");

    proxy.cut();
    let response = get().await.expect("request");
    assert!(response.headers().contains_key("retry-after"));
    let (status, error) = error_code(response).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("service_unavailable")));
    let ready = app.http.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if get().await.expect("request").status() == StatusCode::NOT_FOUND {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "requests succeed again once the database is back");
    drop(pg);
}
