//! Upload ingest acceptance: sessions, parts, completion with its outbox event, expiry.

use base64::Engine;
use chrono::Utc;
use md5::Digest as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, MIB, TestApp, error_code, fake_mp4, sha256_hex, spawn_app, spawn_app_with, token};
use crate::on_both_backends;

on_both_backends!(
    full_upload_stores_a_byte_identical_source,
    completion_creates_the_video_and_its_event_together,
    resume_sends_only_the_missing_parts,
    checksum_mismatch_is_refused_and_keeps_the_good_copy,
    wrong_part_size_is_refused,
    completing_with_a_missing_part_names_it,
    completion_is_idempotent_and_abort_is_final,
    uploads_are_invisible_to_other_users,
    requests_without_a_token_are_unauthorized,
    a_failed_completion_leaves_neither_video_nor_event,
    expired_sessions_are_swept_from_the_store,
    whole_file_checksum_is_verified,
    create_validates_its_input,
    an_abort_that_loses_a_race_answers_like_the_winner,
);

async fn full_upload_stores_a_byte_identical_source(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = token("alice");
    let data = fake_mp4(12 * MIB + 12_345);
    let session = app.start_upload(&alice, &data, Some(sha256_hex(&data))).await;
    assert_eq!(session["status"], "created");
    assert_eq!(session["part_count"], 3);
    let parts = session["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 3);
    for target in parts {
        assert_eq!(target["method"], "PUT");
        let n = target["part_number"].as_u64().expect("n");
        let bytes = TestApp::part_bytes(&session, &data, n);
        assert_eq!(target["size_bytes"].as_u64(), Some(bytes.len() as u64));
        let sha = sha256_hex(&bytes);
        let response = app.send_part(&alice, target, bytes, &[("x-reel-checksum-sha256", sha.clone())]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let receipt: Value = response.json().await.expect("json");
        assert_eq!(receipt["sha256"], sha);
        assert!(!receipt["etag"].as_str().unwrap_or_default().is_empty());
    }
    let id = session["upload_id"].as_str().expect("id");
    let response = app.complete(&alice, id).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let done: Value = response.json().await.expect("json");
    assert_eq!(done["status"], "processing");
    let video_id = done["video_id"].as_str().expect("video id");

    let key = format!("raw/alice/{video_id}/source.mp4");
    assert_eq!(sha256_hex(&app.object(&key).await), sha256_hex(&data), "source is byte-identical");
    let shown: Value = app.get_upload(&alice, id).await.json().await.expect("json");
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["video_id"], video_id);
    assert!(app.keys_under(&format!("staging/{id}")).await.is_empty(), "staged parts are freed");
}

async fn completion_creates_the_video_and_its_event_together(backend: Backend) {
    let app = spawn_app(backend).await;
    let data = fake_mp4(MIB);
    let (upload_id, video_id) = app.upload(&token("bob"), &data).await;
    let video = app.state.db.get_video(video_id.parse().expect("uuid")).await.expect("db").expect("video row");
    assert_eq!(video.status.as_str(), "processing");
    assert_eq!(video.upload_id.to_string(), upload_id);
    assert_eq!(video.origin_object_key, format!("raw/bob/{video_id}/source.mp4"));
    let events = app.state.db.events_for(&video_id).await.expect("db");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "video_upload_completed");
    assert_eq!(events[0].payload["video_id"], video_id);
    assert_eq!(events[0].payload["source_key"], video.origin_object_key);
}

async fn resume_sends_only_the_missing_parts(backend: Backend) {
    let app = spawn_app(backend).await;
    let carol = token("carol");
    let data = fake_mp4(11 * MIB);
    let session = app.start_upload(&carol, &data, None).await;
    let id = session["upload_id"].as_str().expect("id").to_owned();
    for n in [1, 3] {
        let target = &session["parts"][n - 1];
        let response = app.send_part(&carol, target, TestApp::part_bytes(&session, &data, n as u64), &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    drop(session);

    let resumed: Value = app.get_upload(&carol, &id).await.json().await.expect("json");
    assert_eq!(resumed["status"], "uploading");
    let held: Vec<u64> =
        resumed["received_parts"].as_array().expect("held").iter().filter_map(|p| p["part_number"].as_u64()).collect();
    assert_eq!(held, vec![1, 3]);
    let pending = resumed["parts"].as_array().expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["part_number"], 2);
    let response = app.send_part(&carol, &pending[0], TestApp::part_bytes(&resumed, &data, 2), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.complete(&carol, &id).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let video_id = response.json::<Value>().await.expect("json")["video_id"].as_str().expect("id").to_owned();
    assert_eq!(sha256_hex(&app.object(&format!("raw/carol/{video_id}/source.mp4")).await), sha256_hex(&data));
}

async fn checksum_mismatch_is_refused_and_keeps_the_good_copy(backend: Backend) {
    let app = spawn_app(backend).await;
    let dave = token("dave");
    let data = fake_mp4(7 * MIB);
    let session = app.start_upload(&dave, &data, None).await;
    let id = session["upload_id"].as_str().expect("id").to_owned();
    let (first, second) = (&session["parts"][0], &session["parts"][1]);
    let bytes = TestApp::part_bytes(&session, &data, 1);

    let wrong_sha = sha256_hex(b"something else");
    let response = app.send_part(&dave, first, bytes.clone(), &[("x-reel-checksum-sha256", wrong_sha)]).await;
    let (status, error) = error_code(response).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("checksum_mismatch")));
    let shown: Value = app.get_upload(&dave, &id).await.json().await.expect("json");
    assert_eq!(shown["received_parts"], json!([]), "a refused part is not kept");

    let good_md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&bytes));
    let response = app.send_part(&dave, first, bytes.clone(), &[("content-md5", good_md5)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let wrong_md5 = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
    let mut corrupted = bytes.clone();
    corrupted[100] ^= 0xFF;
    let response = app.send_part(&dave, first, corrupted, &[("content-md5", wrong_md5)]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let response = app.send_part(&dave, second, TestApp::part_bytes(&session, &data, 2), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.complete(&dave, &id).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "the earlier good copy of part 1 survived");
    let video_id = response.json::<Value>().await.expect("json")["video_id"].as_str().expect("id").to_owned();
    assert_eq!(sha256_hex(&app.object(&format!("raw/dave/{video_id}/source.mp4")).await), sha256_hex(&data));
}

async fn wrong_part_size_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let erin = token("erin");
    let data = fake_mp4(6 * MIB);
    let session = app.start_upload(&erin, &data, None).await;
    let mut short = TestApp::part_bytes(&session, &data, 1);
    short.truncate(short.len() - 1);
    let (status, error) = error_code(app.send_part(&erin, &session["parts"][0], short, &[]).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_REQUEST, Some("part_size_mismatch")));
    assert_eq!(error["details"]["expected_bytes"], 5 * MIB);
    let id = session["upload_id"].as_str().expect("id");
    let shown: Value = app.get_upload(&erin, id).await.json().await.expect("json");
    assert_eq!(shown["received_parts"], json!([]));
    let url = app.url(&format!("/v1/videos/uploads/{id}/parts/3"));
    let response = app.http.put(url).bearer_auth(&erin).body(vec![0u8; 10]).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "part 3 is outside a two-part plan");
}

async fn completing_with_a_missing_part_names_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let fay = token("fay");
    let data = fake_mp4(12 * MIB);
    let session = app.start_upload(&fay, &data, None).await;
    for n in [1u64, 3] {
        let response =
            app.send_part(&fay, &session["parts"][n as usize - 1], TestApp::part_bytes(&session, &data, n), &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (status, error) = error_code(app.complete(&fay, session["upload_id"].as_str().expect("id")).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::CONFLICT, Some("missing_parts")));
    assert_eq!(error["details"]["missing_parts"], json!([2]));
}

async fn completion_is_idempotent_and_abort_is_final(backend: Backend) {
    let app = spawn_app(backend).await;
    let gus = token("gus");
    let data = fake_mp4(MIB);
    let (id, video_id) = app.upload(&gus, &data).await;
    let again: Value = app.complete(&gus, &id).await.json().await.expect("json");
    assert_eq!(again["video_id"], video_id.as_str(), "a second complete returns the same video");
    let (status, error) = error_code(app.abort(&gus, &id).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::CONFLICT, Some("upload_not_open")));

    let session = app.start_upload(&gus, &data, None).await;
    let other = session["upload_id"].as_str().expect("id");
    assert_eq!(app.send_part(&gus, &session["parts"][0], data.clone(), &[]).await.status(), StatusCode::OK);
    assert_eq!(app.abort(&gus, other).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.abort(&gus, other).await.status(), StatusCode::NO_CONTENT, "abort is idempotent");
    assert_eq!(app.get_upload(&gus, other).await.status(), StatusCode::NOT_FOUND, "an aborted session is deleted");
    let (status, error) = error_code(app.complete(&gus, other).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::CONFLICT, Some("upload_not_open")));
    assert_eq!(error["details"]["status"], "aborted");
    assert!(app.keys_under(&format!("staging/{other}")).await.is_empty(), "abort frees staged parts");
    app.assert_no_staged_parts(other).await;
}

async fn uploads_are_invisible_to_other_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let (owner, mallory) = (token("owner"), token("mallory"));
    let data = fake_mp4(MIB);
    let session = app.start_upload(&owner, &data, None).await;
    let id = session["upload_id"].as_str().expect("id");
    // A fresh connection per request: the server closes a connection whose body it refused
    // unread, and a pooled client may race with that.
    let fresh = reqwest::Client::new;
    let requests = [
        fresh().get(app.url(&format!("/v1/videos/uploads/{id}"))),
        fresh().put(app.url(&format!("/v1/videos/uploads/{id}/parts/1"))).body(data.clone()),
        fresh()
            .post(app.url(&format!("/v1/videos/uploads/{id}/parts")))
            .json(&json!({"parts": [{"part_number": 1, "etag": "x"}]})),
        fresh().post(app.url(&format!("/v1/videos/uploads/{id}/complete"))),
        fresh().delete(app.url(&format!("/v1/videos/uploads/{id}"))),
    ];
    for request in requests {
        let (status, error) = error_code(request.bearer_auth(&mallory).send().await.expect("request")).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    }
    let shown: Value = app.get_upload(&owner, id).await.json().await.expect("json");
    assert_eq!(shown["status"], "created", "nothing another user did touched the session");
}

async fn requests_without_a_token_are_unauthorized(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = uuid::Uuid::now_v7();
    // A fresh connection per request: the server closes a connection whose body it refused
    // unread, and a pooled client may race with that.
    let fresh = reqwest::Client::new;
    let requests = [
        fresh().post(app.url("/v1/videos/uploads")).json(&json!({})),
        fresh().get(app.url(&format!("/v1/videos/uploads/{id}"))),
        fresh().put(app.url(&format!("/v1/videos/uploads/{id}/parts/1"))).body("x"),
        fresh().post(app.url(&format!("/v1/videos/uploads/{id}/parts"))).json(&json!({"parts": []})),
        fresh().post(app.url(&format!("/v1/videos/uploads/{id}/complete"))),
        fresh().delete(app.url(&format!("/v1/videos/uploads/{id}"))),
    ];
    for request in requests {
        let (status, error) = error_code(request.send().await.expect("request")).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    }
    let forged = format!("{}x", token("alice"));
    let response =
        app.http.get(app.url(&format!("/v1/videos/uploads/{id}"))).bearer_auth(forged).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn a_failed_completion_leaves_neither_video_nor_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let hal = token("hal");
    let data = fake_mp4(MIB);
    let session = app.start_upload(&hal, &data, None).await;
    let id = session["upload_id"].as_str().expect("id");
    assert_eq!(app.send_part(&hal, &session["parts"][0], data.clone(), &[]).await.status(), StatusCode::OK);

    let (install, remove) = match backend {
        Backend::SqliteFs => (
            "CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox_events BEGIN SELECT RAISE(ABORT, 'injected'); END;",
            "DROP TRIGGER fail_outbox;",
        ),
        Backend::PostgresS3 => (
            "CREATE FUNCTION fail_outbox() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$; \
             CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox_events FOR EACH ROW EXECUTE FUNCTION fail_outbox();",
            "DROP TRIGGER fail_outbox ON outbox_events; DROP FUNCTION fail_outbox();",
        ),
    };
    app.exec_sql(install).await;
    let (status, error) = error_code(app.complete(&hal, id).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("internal")));
    let upload = app.state.db.get_upload(id.parse().expect("uuid")).await.expect("db").expect("session");
    let video_id = upload.video_id;
    assert!(app.state.db.get_video(video_id).await.expect("db").is_none(), "no video row without its event");
    assert!(app.state.db.events_for(&video_id.to_string()).await.expect("db").is_empty());
    assert_eq!(upload.status.as_str(), "uploading");

    app.exec_sql(remove).await;
    let response = app.complete(&hal, id).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "the retry succeeds");
    assert!(app.state.db.get_video(video_id).await.expect("db").is_some());
    assert_eq!(app.state.db.events_for(&video_id.to_string()).await.expect("db").len(), 1);
}

async fn expired_sessions_are_swept_from_the_store(backend: Backend) {
    let app = spawn_app(backend).await;
    let ida = token("ida");
    let data = fake_mp4(6 * MIB);
    let session = app.start_upload(&ida, &data, None).await;
    let id = session["upload_id"].as_str().expect("id");
    let response = app.send_part(&ida, &session["parts"][0], TestApp::part_bytes(&session, &data, 1), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = app.state.ingest.sweep(Utc::now()).await.expect("sweep");
    assert_eq!(fresh.expired, 0, "an open session within its TTL is left alone");

    let report = app.state.ingest.sweep(Utc::now() + chrono::Duration::days(2)).await.expect("sweep");
    assert_eq!(report.expired, 1);
    let shown: Value = app.get_upload(&ida, id).await.json().await.expect("json");
    assert_eq!(shown["status"], "expired");
    assert_eq!(shown["parts"], json!([]), "no upload targets once closed");
    assert!(app.keys_under(&format!("staging/{id}")).await.is_empty(), "staged parts are deleted");
    assert!(app.keys_under("raw/").await.is_empty());
    app.assert_no_staged_parts(id).await;
    let (status, _) =
        error_code(app.send_part(&ida, &session["parts"][1], TestApp::part_bytes(&session, &data, 2), &[]).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

async fn whole_file_checksum_is_verified(backend: Backend) {
    let app = spawn_app(backend).await;
    let jo = token("jo");
    let data = fake_mp4(MIB);
    let session = app.start_upload(&jo, &data, Some(sha256_hex(b"not the file"))).await;
    let id = session["upload_id"].as_str().expect("id");
    assert_eq!(app.send_part(&jo, &session["parts"][0], data.clone(), &[]).await.status(), StatusCode::OK);
    let (status, error) = error_code(app.complete(&jo, id).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("checksum_mismatch")));
    let video_id = app.state.db.get_upload(id.parse().expect("uuid")).await.expect("db").expect("row").video_id;
    assert!(app.state.db.get_video(video_id).await.expect("db").is_none());
    assert!(app.keys_under("raw/").await.is_empty(), "nothing is published under raw/");
}

async fn create_validates_its_input(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.uploads.max_size_bytes = 100 * MIB as u64).await;
    let kim = token("kim");
    let cases = [
        (json!({"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 0}), "invalid_size"),
        (json!({"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 101 * MIB}), "upload_too_large"),
        (json!({"filename": "a.mp3", "content_type": "audio/mpeg", "size_bytes": 10}), "unsupported_content_type"),
        (json!({"filename": "", "content_type": "video/mp4", "size_bytes": 10}), "invalid_filename"),
        (
            json!({"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 10, "sha256": "abc"}),
            "invalid_checksum",
        ),
        (json!({"filename": "a.mp4", "content_type": "video/mp4"}), "invalid_body"),
        (json!({"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": -5}), "invalid_body"),
    ];
    for (body, code) in cases {
        let (status, error) = error_code(app.create_upload(&kim, body.clone()).await).await;
        assert_eq!(error["code"], code, "{body}");
        assert!(status.is_client_error(), "{body}: {status}");
        assert!(!error["message"].as_str().unwrap_or_default().is_empty());
    }
    let response = app
        .http
        .post(app.url("/v1/videos/uploads"))
        .bearer_auth(&kim)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("request");
    let (status, error) = error_code(response).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_json")));
}

async fn an_abort_that_loses_a_race_answers_like_the_winner(backend: Backend) {
    let app = spawn_app(backend).await;
    let lou = token("lou");
    let data = fake_mp4(MIB);
    let caller =
        reel::api::auth::Authenticator::new(crate::helpers::JWT_SECRET.as_bytes()).verify(&lou).expect("token");
    for finish_first in ["abort", "complete"] {
        let session = app.start_upload(&lou, &data, None).await;
        let id = session["upload_id"].as_str().expect("id");
        assert_eq!(app.send_part(&lou, &session["parts"][0], data.clone(), &[]).await.status(), StatusCode::OK);
        let stale = app.state.ingest.session_for(&caller, id.parse().expect("uuid")).await.expect("session");
        let winner = if finish_first == "abort" { app.abort(&lou, id).await } else { app.complete(&lou, id).await };
        assert!(winner.status().is_success());
        let late = app.state.ingest.abort(&stale, Utc::now()).await;
        match finish_first {
            "abort" => assert!(late.is_ok(), "aborting an aborted upload is fine: {late:?}"),
            _ => assert!(
                matches!(late, Err(reel::ingest::IngestError::NotOpen { .. })),
                "a completed upload stays completed: {late:?}"
            ),
        }
    }
}
