//! Streaming a large part keeps the server's memory bounded. Runs the real `reel` binary and
//! reads its peak resident set (`VmHWM`) from /proc after a 256 MiB part.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, MIB, token};

const PART: usize = 256 * MIB;
const PEAK_LIMIT_KIB: u64 = 96 * 1024;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmHWM value")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_part_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"))
        .args(["serve", "--no-workers", "--bind", &format!("127.0.0.1:{port}")])
        .env("REEL_DATABASE__URL", format!("sqlite://{}/reel.db", dir.path().display()))
        .env("REEL_STORAGE__LOCAL_ROOT", dir.path().join("objects"))
        .env("REEL_AUTH__JWT_SECRET", JWT_SECRET)
        .env("REEL_UPLOADS__PART_SIZE_BYTES", PART.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("reel starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "reel answers /healthz");

    let alice = token("alice");
    let body = json!({"filename": "big.mp4", "content_type": "video/mp4", "size_bytes": PART});
    let session: Value = http
        .post(format!("{base}/v1/videos/uploads"))
        .bearer_auth(&alice)
        .json(&body)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_eq!(session["part_count"], 1);
    let chunk = Bytes::from(vec![7u8; MIB]);
    let chunks = stream::iter((0..PART / MIB).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let url = session["parts"][0]["url"].as_str().expect("url");
    let response = http
        .put(url)
        .bearer_auth(&alice)
        .header("content-length", PART)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("part upload");
    assert_eq!(response.status(), StatusCode::OK);

    let pid = child.id().expect("running");
    let peak = peak_rss_kib(pid);
    child.kill().await.expect("kill");
    println!("peak RSS while streaming a {} MiB part: {peak} KiB", PART / MIB);
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB while streaming a {} MiB part", PART / MIB);
}
