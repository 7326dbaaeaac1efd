//! HTTP server limits: the header read timeout, the idle timeout of streamed part bodies and the
//! global concurrency limit (`503` + `Retry-After`).

use std::time::Duration;

use futures::channel::mpsc;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, MIB, TestApp, error_code, fake_mp4, spawn_app_with, token};
use crate::on_both_backends;

on_both_backends!(a_part_body_that_stops_sending_is_cut_off_and_not_stored);

/// Longest the tests wait for the server to act on a limit of one second.
const PATIENCE: Duration = Duration::from_secs(20);

type Chunks = mpsc::UnboundedSender<Result<Vec<u8>, std::io::Error>>;

/// Starts a part PUT whose body the test feeds through the returned sender.
fn streamed_put(
    app: &TestApp,
    token: &str,
    url: &str,
) -> (Chunks, tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>) {
    let (chunks, body) = mpsc::unbounded();
    let request = app.http.put(url).bearer_auth(token).body(reqwest::Body::wrap_stream(body));
    (chunks, tokio::spawn(request.send()))
}

async fn a_part_body_that_stops_sending_is_cut_off_and_not_stored(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.uploads.part_idle_timeout = Duration::from_secs(1)).await;
    let ida = token("ida");
    let data = fake_mp4(MIB);
    let session = app.start_upload(&ida, &data, None).await;
    let id = session["upload_id"].as_str().expect("id");
    let (chunks, put) = streamed_put(&app, &ida, session["parts"][0]["url"].as_str().expect("url"));
    chunks.unbounded_send(Ok(data[..64 * 1024].to_vec())).expect("send");

    let outcome = tokio::time::timeout(PATIENCE, put).await.expect("the server cuts off a stalled body").expect("task");
    if let Ok(response) = outcome {
        let (status, error) = error_code(response).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_REQUEST, Some("body_read_failed")));
    }
    drop(chunks);
    let shown: Value = app.get_upload(&ida, id).await.json().await.expect("json");
    assert_eq!(shown["received_parts"], serde_json::json!([]), "nothing of the stalled part is kept");
    let part = app.send_part(&ida, &session["parts"][0], data.clone(), &[]).await;
    assert_eq!(part.status(), StatusCode::OK, "the part can be sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_limit_get_503_with_retry_after() {
    let app = spawn_app_with(Backend::SqliteFs, |config| config.server.max_concurrent_requests = 1).await;
    let kai = token("kai");
    let data = fake_mp4(MIB);
    let session = app.start_upload(&kai, &data, None).await;
    let id = session["upload_id"].as_str().expect("id");
    let url = session["parts"][0]["url"].as_str().expect("url");
    // The part PUT holds the one slot while its body streams. Should a poll hold the slot at the
    // moment the PUT arrives, the PUT is the one refused, and it is sent again.
    let mut attempts = 0;
    let (chunks, put, shed) = loop {
        attempts += 1;
        assert!(attempts <= 20, "the part PUT never held the slot");
        let (chunks, put) = streamed_put(&app, &kai, url);
        chunks.unbounded_send(Ok(data[..1024].to_vec())).expect("send");
        let mut shed = None;
        while shed.is_none() && !put.is_finished() {
            let response = app.get_upload(&kai, id).await;
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                shed = Some(response);
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some(shed) = shed {
            break (chunks, put, shed);
        }
    };
    assert_eq!(shed.headers()["retry-after"], "1");
    let (_, error) = error_code(shed).await;
    assert_eq!(error["code"], "overloaded");
    assert_eq!(app.http.get(app.url("/healthz")).send().await.expect("healthz").status(), StatusCode::OK);

    chunks.unbounded_send(Ok(data[1024..].to_vec())).expect("send");
    drop(chunks);
    let response = tokio::time::timeout(PATIENCE, put).await.expect("put ends").expect("task").expect("put");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get_upload(&kai, id).await.status(), StatusCode::OK, "the slot is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app =
        spawn_app_with(Backend::SqliteFs, |config| config.server.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: reel\r\n").await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closes a connection whose headers never end");
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
}
