//! Events out: signed webhooks (delivery, retries, failure and manual retry, secret rotation, a
//! worker killed mid-delivery) and the NATS JetStream sink (exactly once through a forced
//! duplicate, and through an outage of its own NATS server). Signatures are checked with an
//! implementation of the Standard Webhooks spec written here, independent of reel's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use reel::config::Config;
use reel::model::{EventType, OutboxEvent, Role};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{Backend, TestApp, fake_mp4, portrait_clip, spawn_app_with, spawn_worker, token, token_with};
use crate::on_both_backends;

on_both_backends!(
    a_receiver_gets_signed_lifecycle_events,
    failed_attempts_are_retried_then_failed_and_retried_by_hand,
    a_rotated_secret_signs_beside_the_new_one,
    endpoints_are_validated_and_managed,
    an_endpoint_failing_too_long_is_disabled,
    the_relay_dead_letters_events_it_cannot_use,
    a_durable_consumer_gets_each_event_once,
    a_nats_outage_delays_events_and_loses_none,
    a_worker_killed_mid_delivery_loses_nothing,
);

/// Verifies a Standard Webhooks signature header against `secret` (the spec, from scratch).
fn verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let Ok(key) = STANDARD.decode(secret.trim_start_matches("whsec_")) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header("webhook-signature").split(' ').any(|signature| signature == expected)
}

#[test]
fn the_verifier_accepts_the_published_test_vector() {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().expect("header"));
    headers.insert("webhook-timestamp", "1614265330".parse().expect("header"));
    headers.insert("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".parse().expect("header"));
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(verifies(secret, &headers, br#"{"test": 2432232314}"#));
    assert!(!verifies(secret, &headers, br#"{"test": 2432232315}"#));
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn id(&self) -> String {
        self.headers.get("webhook-id").and_then(|v| v.to_str().ok()).expect("webhook-id").to_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    /// Statuses to answer, in order; 200 once exhausted.
    script: Vec<u16>,
    /// Holds the next request this long before answering.
    hold: Option<Duration>,
    /// Answers every request with this status.
    always: Option<u16>,
}

/// A local webhook receiver.
#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let (status, hold) = {
        let mut s = state.lock().expect("lock");
        s.got.push(Received { headers, body: body.to_vec() });
        let status = match s.always {
            Some(status) => status,
            None if s.script.is_empty() => 200,
            None => s.script.remove(0),
        };
        (status, s.hold.take())
    };
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    StatusCode::from_u16(status).expect("status")
}

impl Receiver {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let router = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver { url, state }
    }

    fn got(&self) -> Vec<Received> {
        self.state.lock().expect("lock").got.clone()
    }

    fn set(&self, change: impl FnOnce(&mut ReceiverState)) {
        change(&mut self.state.lock().expect("lock"));
    }

    /// Waits until `done` holds for what arrived.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{what}: got {:?}",
                got.iter().map(Received::json).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Fast retries, private targets allowed (the receiver is on loopback).
fn fast(config: &mut Config) {
    config.webhooks.allow_private_targets = true;
    config.webhooks.backoff = Duration::from_millis(20);
    config.webhooks.backoff_max = Duration::from_millis(100);
    config.webhooks.poll_interval = Duration::from_millis(20);
    config.webhooks.max_attempts = 3;
    config.webhooks.timeout = Duration::from_secs(2);
    config.webhooks.lease = Duration::from_secs(3);
    config.events.poll_interval = Duration::from_millis(20);
}

fn admin() -> String {
    token_with("ops", Role::Admin, None)
}

impl TestApp {
    /// Registers a webhook; returns its JSON (with the secret).
    async fn add_webhook(&self, url: &str, events: Value) -> Value {
        let body = json!({"url": url, "events": events, "description": "test receiver"});
        let response = self
            .http
            .post(self.url("/v1/ops/webhooks"))
            .bearer_auth(admin())
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    /// Completes an upload of bytes the probe refuses: one `upload.completed` event.
    async fn completed_upload(&self, user: &str) -> String {
        self.upload(&token(user), &fake_mp4(64 * 1024)).await.1
    }

    /// An endpoint's deliveries.
    async fn deliveries(&self, webhook: &str, query: &str) -> Vec<Value> {
        let (status, _, body) = self.get_json(&admin(), &format!("/v1/ops/webhooks/{webhook}/deliveries{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["deliveries"].as_array().expect("deliveries").clone()
    }

    async fn wait_deliveries(
        &self,
        webhook: &str,
        query: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let rows = self.deliveries(webhook, query).await;
            if done(&rows) {
                return rows;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{what}: {rows:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first column of every row of `sql`, as text.
    async fn texts_of(&self, sql: &str) -> Vec<String> {
        use sqlx::Row;
        match &self.state.db {
            reel::db::Db::Sqlite(pool) => {
                sqlx::query(sql).fetch_all(pool).await.expect("rows").iter().map(|r| r.get(0)).collect()
            }
            reel::db::Db::Postgres(pool) => {
                sqlx::query(sql).fetch_all(pool).await.expect("rows").iter().map(|r| r.get(0)).collect()
            }
        }
    }

    /// One text column of the first row of `sql`.
    async fn text_of(&self, sql: &str) -> Option<String> {
        use sqlx::Row;
        match &self.state.db {
            reel::db::Db::Sqlite(pool) => {
                sqlx::query(sql).fetch_one(pool).await.expect("row").try_get(0).expect("text")
            }
            reel::db::Db::Postgres(pool) => {
                sqlx::query(sql).fetch_one(pool).await.expect("row").try_get(0).expect("text")
            }
        }
    }
}

fn of_type<'a>(got: &'a [Received], event_type: &str, video_id: &str) -> Option<&'a Received> {
    got.iter().find(|r| {
        let body = r.json();
        body["type"] == event_type && body["data"]["video_id"] == video_id
    })
}

async fn a_receiver_gets_signed_lifecycle_events(backend: Backend) {
    let app = spawn_app_with(backend, fast).await;
    let receiver = Receiver::start().await;
    let hook = app.add_webhook(&receiver.url, json!([])).await;
    let secret = hook["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_") && STANDARD.decode(&secret[6..]).expect("base64").len() >= 24);

    let (_, good) = app.upload(&token("ana"), &portrait_clip(180, 320, 1)).await;
    let bad = app.completed_upload("ana").await;
    app.drain().await;
    let got = receiver
        .wait_for("completed, ready and failed", |got| {
            of_type(got, "video.ready", &good).is_some() && of_type(got, "video.failed", &bad).is_some()
        })
        .await;

    for received in &got {
        assert!(verifies(secret, &received.headers, &received.body), "signature of {}", received.json());
        let body = received.json();
        assert_eq!(received.id(), body["id"].as_str().expect("id"), "webhook-id is the event id");
        assert!(uuid::Uuid::parse_str(&received.id()).expect("uuid").get_version_num() == 7);
        assert!(chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().expect("created_at")).is_ok());
        assert_eq!(received.headers["content-type"], "application/json");
    }
    for video in [&good, &bad] {
        let completed = of_type(&got, "upload.completed", video).expect("upload.completed").json();
        assert_eq!(completed["data"]["creator_id"], "ana");
        assert!(completed["data"]["upload_id"].is_string() && completed["data"]["size_bytes"].is_u64());
    }
    let ready = of_type(&got, "video.ready", &good).expect("video.ready").json();
    let data = &ready["data"];
    assert_eq!(data["creator_id"], "ana");
    assert!(data["duration_ms"].as_i64().expect("duration") > 500);
    assert_eq!((data["width"].as_i64(), data["height"].as_i64()), (Some(180), Some(320)));
    let manifest = data["playback_manifest_url"].as_str().expect("manifest url");
    assert!(manifest.starts_with(&app.base) && manifest.ends_with(".m3u8"), "{manifest}");
    assert_eq!(app.http.get(manifest).send().await.expect("manifest").status(), StatusCode::OK);
    assert!(data["thumbnail_url"].is_string() && !data["renditions"].as_array().expect("renditions").is_empty());
    let failed = of_type(&got, "video.failed", &bad).expect("video.failed").json();
    assert!(failed["data"]["failed_reason"].is_string() && failed["data"]["retryable"].is_boolean());
    let ids: Vec<String> = got.iter().map(Received::id).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "every event once");
}

async fn failed_attempts_are_retried_then_failed_and_retried_by_hand(backend: Backend) {
    let app = spawn_app_with(backend, fast).await;
    let flaky = Receiver::start().await;
    flaky.set(|s| s.script = vec![500, 500, 200]);
    let down = Receiver::start().await;
    down.set(|s| s.always = Some(503));
    let flaky_hook = app.add_webhook(&flaky.url, json!(["upload.completed"])).await;
    let down_hook = app.add_webhook(&down.url, json!(["upload.completed"])).await;
    let (flaky_id, down_id) = (flaky_hook["id"].as_str().expect("id"), down_hook["id"].as_str().expect("id"));

    let video = app.completed_upload("bo").await;
    let got = flaky.wait_for("three attempts", |got| got.len() >= 3).await;
    assert!(got.iter().all(|r| r.id() == got[0].id()), "every attempt carries the same webhook-id");
    assert_eq!(got[0].json()["data"]["video_id"], video.as_str());
    let rows = app
        .wait_deliveries(flaky_id, "", "delivered", |rows| rows.first().is_some_and(|d| d["status"] == "delivered"))
        .await;
    assert_eq!((rows.len(), &rows[0]["attempts"], &rows[0]["last_status"]), (1, &json!(3), &json!(200)));

    let failed = app.wait_deliveries(down_id, "?status=failed", "failed", |rows| rows.len() == 1).await;
    assert_eq!((&failed[0]["attempts"], &failed[0]["last_status"]), (&json!(3), &json!(503)));
    let before = down.got().len();
    assert!((1..=3).contains(&before), "max_attempts attempts, then no more: {before}");
    assert!(app.deliveries(down_id, "?status=pending").await.is_empty());

    down.set(|s| s.always = None);
    let delivery = failed[0]["id"].as_str().expect("id");
    let retry = |path: String| app.http.post(app.url(&path)).bearer_auth(admin()).send();
    let response = retry(format!("/v1/ops/webhooks/{down_id}/deliveries/{delivery}/retry")).await.expect("request");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.wait_deliveries(down_id, "?status=delivered", "manual retry", |rows| rows.len() == 1).await;
    let got = down.got();
    assert_eq!(got.len(), before + 1, "one more attempt");
    assert!(
        got.iter()
            .all(|r| r.id() == got[0].id() && verifies(down_hook["secret"].as_str().expect("s"), &r.headers, &r.body))
    );
    let unknown = uuid::Uuid::now_v7();
    let response = retry(format!("/v1/ops/webhooks/{down_id}/deliveries/{unknown}/retry")).await.expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

async fn a_rotated_secret_signs_beside_the_new_one(backend: Backend) {
    let app = spawn_app_with(backend, fast).await;
    let receiver = Receiver::start().await;
    let hook = app.add_webhook(&receiver.url, json!(["upload.completed"])).await;
    let (id, old) = (hook["id"].as_str().expect("id"), hook["secret"].as_str().expect("secret"));
    let response = app
        .http
        .post(app.url(&format!("/v1/ops/webhooks/{id}/rotate-secret")))
        .bearer_auth(admin())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.expect("json");
    let new = rotated["secret"].as_str().expect("new secret");
    assert_ne!(new, old);
    let overlap_end =
        chrono::DateTime::parse_from_rfc3339(rotated["previous_secret_expires_at"].as_str().expect("end"))
            .expect("time");
    let hours = (overlap_end.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((23 * 60..=24 * 60).contains(&hours), "a 24 h overlap: {hours} min");
    let (_, _, shown) = app.get_json(&admin(), &format!("/v1/ops/webhooks/{id}")).await;
    assert!(shown.get("secret").is_none(), "the secret is shown only on create and rotate");

    app.completed_upload("cy").await;
    let got = receiver.wait_for("one delivery", |got| !got.is_empty()).await;
    let signatures = got[0].headers["webhook-signature"].to_str().expect("ascii");
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(verifies(old, &got[0].headers, &got[0].body) && verifies(new, &got[0].headers, &got[0].body));
}

async fn endpoints_are_validated_and_managed(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        fast(config);
        config.webhooks.allow_private_targets = false;
    })
    .await;
    let create = |body: Value| app.http.post(app.url("/v1/ops/webhooks")).bearer_auth(admin()).json(&body).send();
    for url in [
        "ftp://example.com/hook",
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "http://10.0.0.8/",
    ] {
        let response = create(json!({"url": url})).await.expect("request");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
    }
    let response =
        create(json!({"url": "https://93.184.215.14/hook", "events": ["video.nope"]})).await.expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response =
        create(json!({"url": "https://93.184.215.14/hook", "events": ["video.ready"]})).await.expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let hook: Value = response.json().await.expect("json");
    let id = hook["id"].as_str().expect("id");
    assert_eq!(hook["events"], json!(["video.ready"]));

    let patch = |body: Value| {
        app.http.patch(app.url(&format!("/v1/ops/webhooks/{id}"))).bearer_auth(admin()).json(&body).send()
    };
    let changed: Value =
        patch(json!({"enabled": false, "description": "paused"})).await.expect("request").json().await.expect("json");
    assert_eq!((&changed["status"], &changed["description"]), (&json!("disabled"), &json!("paused")));
    assert_eq!(
        patch(json!({"url": "http://localhost/"})).await.expect("request").status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, _, list) = app.get_json(&admin(), "/v1/ops/webhooks").await;
    assert_eq!(list["webhooks"].as_array().expect("list").len(), 1);
    let (status, _, _) = app.get_json(&token("eve"), "/v1/ops/webhooks").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let delete =
        app.http.delete(app.url(&format!("/v1/ops/webhooks/{id}"))).bearer_auth(admin()).send().await.expect("request");
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let (status, _, _) = app.get_json(&admin(), &format!("/v1/ops/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn an_endpoint_failing_too_long_is_disabled(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        fast(config);
        config.webhooks.disable_after = Duration::from_millis(50);
        config.webhooks.max_attempts = 20;
        config.webhooks.backoff = Duration::from_millis(60);
    })
    .await;
    let down = Receiver::start().await;
    down.set(|s| s.always = Some(500));
    let hook = app.add_webhook(&down.url, json!([])).await;
    let id = hook["id"].as_str().expect("id");
    app.completed_upload("ivo").await;
    let failed = app.wait_deliveries(id, "?status=failed", "given up with the endpoint", |rows| rows.len() == 1).await;
    assert_eq!(failed[0]["last_error"], "the endpoint is disabled");
    let (_, _, shown) = app.get_json(&admin(), &format!("/v1/ops/webhooks/{id}")).await;
    assert_eq!(shown["status"], "disabled", "{shown}");
    assert!(shown["disabled_at"].is_string() && shown["failing_since"].is_string());
    let attempts = down.got().len();
    assert!((2..20).contains(&attempts), "attempts stop once the endpoint is disabled: {attempts}");

    let response = app
        .http
        .patch(app.url(&format!("/v1/ops/webhooks/{id}")))
        .bearer_auth(admin())
        .json(&json!({"enabled": true}))
        .send()
        .await
        .expect("request");
    let enabled: Value = response.json().await.expect("json");
    assert_eq!((&enabled["status"], &enabled["failing_since"]), (&json!("enabled"), &Value::Null));
}

async fn the_relay_dead_letters_events_it_cannot_use(backend: Backend) {
    let app = spawn_app_with(backend, fast).await;
    let bogus = OutboxEvent {
        id: uuid::Uuid::now_v7(),
        event_type: EventType::UploadCompleted,
        aggregate_id: "not-a-video".into(),
        payload: json!({}),
        created_at: chrono::Utc::now(),
    };
    app.state.db.insert_event(&bogus).await.expect("insert");
    app.exec_sql(
        "INSERT INTO outbox_events (id, event_type, aggregate_id, payload, created_at) \
         VALUES ('garbage', 'video_upload_completed', 'x', 'not json', '2026-01-01T00:00:00Z')",
    )
    .await;
    let (_, video) = app.upload(&token("di"), &portrait_clip(180, 320, 1)).await;
    app.drain().await;
    assert_eq!(app.video(&video).await.status.as_str(), "ready", "the good event behind the bad ones was relayed");
    for id in [bogus.id.to_string(), "garbage".to_owned()] {
        let reason = app.text_of(&format!("SELECT dead_reason FROM outbox_events WHERE id = '{id}'")).await;
        assert!(reason.is_some(), "{id} is dead-lettered with a reason");
        let relayed =
            app.text_of(&format!("SELECT CAST(published_at AS TEXT) FROM outbox_events WHERE id = '{id}'")).await;
        assert!(relayed.is_some(), "{id} is no longer pending");
    }
    assert!(app.drain().await.is_empty());
}

/// A unique stream and subject prefix on the shared NATS server.
fn nats_names() -> (String, String) {
    let tag = uuid::Uuid::now_v7().simple().to_string();
    (format!("REEL_TEST_{tag}"), format!("reel-test-{tag}.events"))
}

fn nats_url() -> String {
    std::env::var("REEL_TEST_NATS_URL").unwrap_or_else(|_| {
        panic!("REEL_TEST_NATS_URL is not set: run the suite with scripts/test.sh, which provisions NATS")
    })
}

/// Every message on `stream` through a fresh durable consumer: `(Nats-Msg-Id, subject)`.
async fn consume_all(url: &str, stream: &str) -> Vec<(String, String)> {
    let client = async_nats::connect(url).await.expect("connect to NATS");
    let context = jetstream::new(client);
    let stream = context.get_stream(stream).await.expect("the stream exists");
    let consumer = stream
        .get_or_create_consumer(
            "reel-test",
            jetstream::consumer::pull::Config { durable_name: Some("reel-test".into()), ..Default::default() },
        )
        .await
        .expect("durable consumer");
    let mut batch =
        consumer.fetch().max_messages(1000).expires(Duration::from_secs(1)).messages().await.expect("fetch");
    let mut seen = Vec::new();
    while let Some(Ok(message)) = batch.next().await {
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&message.payload).expect("envelope");
        assert_eq!(body["id"].as_str(), Some(id.as_str()), "Nats-Msg-Id is the event id");
        seen.push((id, message.subject.to_string()));
        message.ack().await.expect("ack");
    }
    seen
}

async fn delete_stream(url: &str, stream: &str) {
    if let Ok(client) = async_nats::connect(url).await {
        let _ = jetstream::new(client).delete_stream(stream).await;
    }
}

impl TestApp {
    /// Waits until every exported event is acknowledged by the stream; returns their ids.
    async fn wait_streamed(&self, count: usize) -> Vec<String> {
        let started = Instant::now();
        loop {
            let pending =
                self.text_of("SELECT CAST(COUNT(*) AS TEXT) FROM outbox_events WHERE streamed_at IS NULL").await;
            let done =
                self.text_of("SELECT CAST(COUNT(*) AS TEXT) FROM outbox_events WHERE streamed_at IS NOT NULL").await;
            if pending.as_deref() == Some("0") && done == Some(count.to_string()) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "streamed {done:?}, pending {pending:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.texts_of("SELECT id FROM outbox_events ORDER BY id").await
    }
}

async fn a_durable_consumer_gets_each_event_once(backend: Backend) {
    let url = nats_url();
    let (stream, prefix) = nats_names();
    let app = spawn_app_with(backend, |config| {
        fast(config);
        config.events.nats_url = Some(url.clone());
        config.events.nats_stream = stream.clone();
        config.events.nats_subject_prefix = prefix.clone();
    })
    .await;
    let first = app.completed_upload("fa").await;
    app.completed_upload("fa").await;
    let ids = app.wait_streamed(2).await;
    app.state.db.unmark_streamed(&ids[0]).await.expect("force a duplicate publish");
    app.wait_streamed(2).await;

    let seen = consume_all(&url, &stream).await;
    delete_stream(&url, &stream).await;
    let mut seen_ids: Vec<_> = seen.iter().map(|(id, _)| id.clone()).collect();
    seen_ids.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen_ids, expected, "each event exactly once despite the republish");
    assert!(seen.iter().all(|(_, subject)| subject == &format!("{prefix}.upload.completed")));
    let events = app.state.db.events_for(&first).await.expect("db");
    assert!(ids.contains(&events[0].id.to_string()));
}

/// A `nats-server -js` of this test's own, on a fixed port and store so it can be restarted.
struct OwnNats {
    port: u16,
    store: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl OwnNats {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let mut nats = OwnNats { port, store: tempfile::tempdir().expect("store"), child: None };
        nats.restart().await;
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        let binary = std::env::var("REEL_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = tokio::process::Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} starts ({e}): set REEL_TEST_NATS_SERVER or run scripts/test.sh"));
        self.child = Some(child);
        let started = Instant::now();
        while tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port))).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "nats-server listens");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("stop nats-server");
            child.wait().await.expect("reaped");
        }
    }
}

async fn a_nats_outage_delays_events_and_loses_none(backend: Backend) {
    let mut nats = OwnNats::start().await;
    let (stream, prefix) = nats_names();
    let url = nats.url();
    let app = spawn_app_with(backend, |config| {
        fast(config);
        config.events.nats_url = Some(url.clone());
        config.events.nats_stream = stream.clone();
        config.events.nats_subject_prefix = prefix.clone();
    })
    .await;
    app.completed_upload("ga").await;
    app.wait_streamed(1).await;

    nats.stop().await;
    app.completed_upload("ga").await;
    app.completed_upload("ga").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = app.text_of("SELECT CAST(COUNT(*) AS TEXT) FROM outbox_events WHERE streamed_at IS NULL").await;
    assert_eq!(waiting.as_deref(), Some("2"), "nothing is marked while NATS is down");

    nats.restart().await;
    let ids = app.wait_streamed(3).await;
    let mut seen: Vec<_> = consume_all(&url, &stream).await.into_iter().map(|(id, _)| id).collect();
    seen.sort();
    let mut expected = ids;
    expected.sort();
    assert_eq!(seen, expected, "every event once after the outage");
}

async fn a_worker_killed_mid_delivery_loses_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        fast(config);
        config.webhooks.workers = 0;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set(|s| s.hold = Some(Duration::from_secs(30)));
    let hook = app.add_webhook(&receiver.url, json!(["upload.completed"])).await;
    let id = hook["id"].as_str().expect("id");
    app.completed_upload("hu").await;
    app.wait_deliveries(id, "?status=pending", "exported", |rows| rows.len() == 1).await;

    let scratch = tempfile::tempdir().expect("temp dir");
    let mut worker = spawn_worker(&app.config, scratch.path(), |c| c.webhooks.workers = 1);
    receiver.wait_for("the worker's attempt", |got| got.len() == 1).await;
    worker.start_kill().expect("kill -9");
    worker.wait().await.expect("reaped");

    let started = Instant::now();
    loop {
        app.state.events.deliver_next().await.expect("deliver");
        if receiver.got().len() >= 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the delivery is taken over once the lease lapses");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = app.wait_deliveries(id, "", "delivered", |rows| rows[0]["status"] == "delivered").await;
    assert_eq!(rows[0]["attempts"], 2);
    let got = receiver.got();
    assert_eq!(got.len(), 2, "one duplicate at most");
    assert_eq!(got[0].id(), got[1].id(), "the duplicate carries the same webhook-id");
    let bodies: HashMap<String, usize> =
        got.iter().map(|r| (String::from_utf8_lossy(&r.body).into_owned(), 1)).collect();
    assert_eq!(bodies.len(), 1, "the same envelope both times");
}
