//! The upload client and the `reel upload|status|feed` commands against a live in-process reel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use reel::client::{ReelClient, StateStore, UploadEvent, UploadOptions, UploadPhase, Uploader};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    Backend, MIB, TcpProxy, TestApp, fake_mp4, portrait_clip, sha256_hex, spawn_app, spawn_app_with, token,
};

/// A file to upload and a private resume-state directory, both removed with the test.
struct Workspace {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Workspace {
    fn with(name: &str, data: &[u8]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(name);
        std::fs::write(&file, data).expect("write file");
        Workspace { dir, file }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn state_files(&self) -> usize {
        std::fs::read_dir(self.state_dir()).map_or(0, |entries| entries.count())
    }

    /// The `reel` binary set up to talk to `app` as `user`.
    fn reel(&self, app: &TestApp, user: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_reel"));
        command
            .env("REEL_SERVER", &app.base)
            .env("REEL_TOKEN", token(user))
            .env("REEL_CLIENT_STATE_DIR", self.state_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// Runs the command to completion with a generous deadline.
async fn finish(mut command: tokio::process::Command) -> (Output, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("reel finishes in time")
        .expect("reel runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// The value of a `key: value` line of the binary's stdout.
fn field<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    stdout.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(": "))
}

/// The stored source object of `video_id`.
async fn source(app: &TestApp, video_id: &str) -> Vec<u8> {
    let keys = app.keys_under("raw/").await;
    let key = keys.iter().find(|k| k.contains(video_id)).expect("source stored under raw/");
    app.object(key).await
}

/// `part_number → etag` of the parts the server holds.
async fn received_etags(app: &TestApp, user: &str, upload_id: &str) -> (String, BTreeMap<u64, String>) {
    let session: Value = app.get_upload(&token(user), upload_id).await.json().await.expect("json");
    let parts = session["received_parts"].as_array().expect("received_parts");
    let etags = parts
        .iter()
        .map(|p| (p["part_number"].as_u64().expect("n"), p["etag"].as_str().expect("etag").to_owned()))
        .collect();
    (session["status"].as_str().expect("status").to_owned(), etags)
}

fn drain_events(mut events: tokio::sync::mpsc::UnboundedReceiver<UploadEvent>) -> Vec<UploadEvent> {
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_uploads_parts_in_parallel_and_the_source_is_byte_identical() {
    let app = spawn_app(Backend::SqliteFs).await;
    let data = fake_mp4(3 * 5 * MIB + 123_457);
    let work = Workspace::with("clip.mp4", &data);
    let client = ReelClient::new(&app.base, Some(token("alice"))).expect("client");
    let (sender, events) = tokio::sync::mpsc::unbounded_channel();
    let uploader =
        Uploader::new(client, StateStore::new(work.state_dir()), UploadOptions::default()).with_events(sender);

    let outcome = uploader.upload(&work.file, &CancellationToken::new()).await.expect("upload succeeds");

    assert_eq!(outcome.resumed_parts, 0);
    assert_eq!(sha256_hex(&source(&app, &outcome.video_id).await), sha256_hex(&data));
    let events = drain_events(events);
    let phases: Vec<_> =
        events.iter().filter_map(|e| if let UploadEvent::Phase(p) = e { Some(*p) } else { None }).collect();
    assert_eq!(phases, [UploadPhase::Created, UploadPhase::Uploading, UploadPhase::Processing]);
    let mut sent: Vec<_> = events
        .iter()
        .filter_map(|e| if let UploadEvent::PartSent { part_number, .. } = e { Some(*part_number) } else { None })
        .collect();
    sent.sort_unstable();
    assert_eq!(sent, [1, 2, 3, 4]);
    assert_eq!(work.state_files(), 0, "the resume state is deleted after completion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reel_upload_wait_reaches_ready_and_prints_the_video() {
    let app = spawn_app_with(Backend::SqliteFs, |config| config.pipeline.workers = 1).await;
    let work = Workspace::with("portrait.mp4", &portrait_clip(360, 640, 2));
    let mut upload = work.reel(&app, "alice");
    upload.arg("upload").arg(&work.file).args(["--wait", "--wait-timeout", "150s"]);

    let (output, stdout, stderr) = finish(upload).await;

    assert!(output.status.success(), "reel upload failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let video_id = field(&stdout, "video_id").expect("the video id is printed");
    assert_eq!(field(&stdout, "status"), Some("ready"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let millis =
        |key| field(&stdout, key).and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| panic!("{key}: {stdout}"));
    assert!(millis("playable_after_ms") <= millis("ready_after_ms"), "playable no later than ready: {stdout}");
    assert!(field(&stdout, "manifest_url").is_some_and(|url| url.contains(video_id) && url.ends_with(".m3u8")));
    assert_eq!(app.video(video_id).await.status.as_str(), "ready");

    let mut status = work.reel(&app, "alice");
    status.args(["status", video_id]);
    let (output, stdout, _) = finish(status).await;
    assert!(output.status.success());
    let json: Value = serde_json::from_str(&stdout).expect("status prints JSON");
    assert_eq!((json["video_id"].as_str(), json["status"].as_str()), (Some(video_id), Some("ready")));

    let mut feed = work.reel(&app, "bob");
    feed.args(["feed", "--limit", "5"]);
    let (output, stdout, _) = finish(feed).await;
    assert!(output.status.success());
    let line = stdout.lines().find(|l| l.starts_with(video_id)).expect("the video is in the feed");
    assert!(line.contains("\tready\thttp"), "feed line: {line}");
}

/// Starts `reel upload` with one part in flight, SIGINTs it once the first part is stored and
/// answers the session id and the binary's stderr.
async fn interrupt_after_first_part(work: &Workspace, app: &TestApp) -> (String, String) {
    let mut upload = work.reel(app, "alice");
    upload.arg("upload").arg(&work.file).args(["--concurrency", "1"]);
    let mut child = upload.spawn().expect("reel starts");
    let pid = child.id().expect("pid");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut stderr = String::new();
    while let Some(line) = lines.next_line().await.expect("stderr line") {
        stderr.push_str(&line);
        stderr.push('\n');
        if line.starts_with("part ") {
            let kill = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
            assert!(kill.expect("kill runs").success());
            break;
        }
    }
    while let Some(line) = lines.next_line().await.expect("stderr line") {
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("stops").expect("status");
    assert!(!status.success(), "an interrupted upload does not report success\nstderr:\n{stderr}");
    let upload_id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("upload ")?.split(':').next())
        .expect("the session is announced")
        .to_owned();
    (upload_id, stderr)
}

fn sent_parts(stderr: &str) -> Vec<u64> {
    stderr.lines().filter_map(|l| l.strip_prefix("part ")?.split(' ').next()?.parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_resumes_sending_only_the_missing_parts() {
    let app = spawn_app(Backend::SqliteFs).await;
    let data = fake_mp4(6 * 5 * MIB + 4_321);
    let work = Workspace::with("long.mp4", &data);

    let (upload_id, stderr) = interrupt_after_first_part(&work, &app).await;
    assert!(stderr.contains("again to resume"), "a resume hint is printed\nstderr:\n{stderr}");
    assert_eq!(work.state_files(), 1, "the resume state survives the interruption");
    let (status, before) = received_etags(&app, "alice", &upload_id).await;
    assert_eq!(status, "uploading");
    assert!((1..7).contains(&before.len()), "some but not all parts arrived: {before:?}");

    let mut again = work.reel(&app, "alice");
    again.arg("upload").arg(&work.file);
    let (output, stdout, stderr) = finish(again).await;

    assert!(output.status.success(), "resume failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(field(&stdout, "upload_id"), Some(upload_id.as_str()), "the same session is resumed");
    let resumed: usize = field(&stdout, "resumed_parts").and_then(|n| n.parse().ok()).expect("resumed_parts");
    let resent = sent_parts(&stderr);
    assert!(resumed >= before.len(), "resumed {resumed}, held {}", before.len());
    assert_eq!(resent.len() + resumed, 7, "only the missing parts are sent: {resent:?}");
    assert!(resent.iter().all(|n| !before.contains_key(n)), "a held part was sent again: {resent:?}");
    let (status, after) = received_etags(&app, "alice", &upload_id).await;
    assert_eq!(status, "completed");
    for (part, etag) in &before {
        assert_eq!(after.get(part), Some(etag), "part {part} was rewritten");
    }
    assert_eq!(stdout.matches("video_id: ").count(), 1, "stdout:\n{stdout}");
    let video_id = field(&stdout, "video_id").expect("video id");
    assert_eq!(sha256_hex(&source(&app, video_id).await), sha256_hex(&data));
    assert_eq!(work.state_files(), 0, "the resume state is deleted after completion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_starts_a_new_session() {
    let app = spawn_app(Backend::SqliteFs).await;
    let work = Workspace::with("clip.mp4", &fake_mp4(2 * 5 * MIB));
    let client = ReelClient::new(&app.base, Some(token("alice"))).expect("client");
    let session = app.start_upload(&token("alice"), &fake_mp4(2 * 5 * MIB), None).await;
    let stale = session["upload_id"].as_str().expect("id");
    let store = StateStore::new(work.state_dir());
    let mut fingerprint = reel::client::state::Fingerprint::of(&work.file).await.expect("fingerprint");
    fingerprint.mtime_ns += 1;
    let state =
        reel::client::state::ResumeState { server: app.base.clone(), upload_id: stale.into(), file: fingerprint };
    store.save(&state).await.expect("save");

    let uploader = Uploader::new(client, store, UploadOptions { concurrency: 2, ..UploadOptions::default() });
    let outcome = uploader.upload(Path::new(&work.file), &CancellationToken::new()).await.expect("upload");

    assert_ne!(outcome.upload_id, stale);
    assert_eq!(outcome.resumed_parts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_retried_with_backoff_until_the_server_is_back() {
    // reel sits behind the proxy and says so in its part URLs (`public_url`), so the client's
    // base and the part URLs agree and every request crosses the outage.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr");
    let proxy = TcpProxy::start(port).await;
    let app = spawn_app_with(Backend::SqliteFs, |config| {
        config.server.bind = port;
        config.server.public_url = Some(format!("http://{}", proxy.addr));
    })
    .await;
    let data = fake_mp4(5 * MIB + 10);
    let work = Workspace::with("clip.mp4", &data);
    let client = ReelClient::new(&format!("http://{}", proxy.addr), Some(token("alice"))).expect("client");
    let (sender, events) = tokio::sync::mpsc::unbounded_channel();
    let uploader =
        Uploader::new(client, StateStore::new(work.state_dir()), UploadOptions::default()).with_events(sender);
    proxy.cut();

    let never = CancellationToken::new();
    let upload = uploader.upload(&work.file, &never);
    let restore = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        proxy.restore();
    };
    let (outcome, ()) = tokio::join!(upload, restore);

    let outcome = outcome.expect("the upload survives the outage");
    assert_eq!(sha256_hex(&source(&app, &outcome.video_id).await), sha256_hex(&data));
    let retries = drain_events(events).into_iter().filter(|e| matches!(e, UploadEvent::Retrying { .. })).count();
    assert!(retries >= 1, "the outage was retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_final_and_shows_the_server_message() {
    let app = spawn_app(Backend::SqliteFs).await;
    let work = Workspace::with("clip.mp4", &fake_mp4(MIB));
    let mut upload = work.reel(&app, "alice");
    upload.env("REEL_TOKEN", "not-a-jwt").arg("upload").arg(&work.file);

    let (output, _, stderr) = finish(upload).await;

    assert!(!output.status.success());
    assert!(stderr.contains("server answered 401"), "stderr:\n{stderr}");
    assert!(!stderr.contains("retry"), "a 4xx is not retried:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_puts_parts_straight_to_the_bucket_when_the_server_presigns_them() {
    let app = spawn_app_with(Backend::PostgresS3, |config| {
        if let Some(s3) = config.storage.s3.as_mut() {
            s3.direct_uploads = true;
        }
    })
    .await;
    let data = fake_mp4(2 * 5 * MIB + 4321);
    let work = Workspace::with("clip.mp4", &data);
    let client = ReelClient::new(&app.base, Some(token("dora"))).expect("client");
    let uploader = Uploader::new(client, StateStore::new(work.state_dir()), UploadOptions::default());

    let outcome = uploader.upload(&work.file, &CancellationToken::new()).await.expect("upload succeeds");

    let shown: Value = app.get_upload(&token("dora"), &outcome.upload_id).await.json().await.expect("json");
    let etags: Vec<&str> =
        shown["received_parts"].as_array().expect("parts").iter().filter_map(|p| p["etag"].as_str()).collect();
    assert_eq!(etags.len(), 3, "every part was registered with the bucket's ETag");
    assert_eq!(sha256_hex(&source(&app, &outcome.video_id).await), sha256_hex(&data));
}
