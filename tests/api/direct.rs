//! Direct-to-S3 uploads: presigned part URLs, registration verified against the bucket.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, MIB, TestApp, error_code, fake_mp4, sha256_hex, spawn_app_with, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_go_straight_to_the_bucket_and_are_verified_on_registration() {
    let app = spawn_app_with(Backend::PostgresS3, |config| {
        if let Some(s3) = config.storage.s3.as_mut() {
            s3.direct_uploads = true;
        }
    })
    .await;
    let lee = token("lee");
    let data = fake_mp4(11 * MIB);
    let session = app.start_upload(&lee, &data, Some(sha256_hex(&data))).await;
    let id = session["upload_id"].as_str().expect("id");
    let plain = reqwest::Client::new();
    let put = |n: u64, bytes: Vec<u8>| {
        let url = session["parts"][n as usize - 1]["url"].as_str().expect("url").to_owned();
        assert!(!url.starts_with(&app.base), "direct targets point at the bucket, not the server");
        assert!(url.contains("X-Amz-Signature"), "the URL is presigned");
        let request = plain.put(url).body(bytes);
        async move {
            let response = request.send().await.expect("put");
            assert_eq!(response.status(), StatusCode::OK, "part {n}");
            response.headers()["etag"].to_str().expect("etag").to_owned()
        }
    };
    let register = |parts: Value| {
        app.http
            .post(app.url(&format!("/v1/videos/uploads/{id}/parts")))
            .bearer_auth(&lee)
            .json(&json!({"parts": parts}))
            .send()
    };
    let refused = |response: reqwest::Response| async move {
        let (status, error) = error_code(response).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("part_not_verified")));
        error
    };

    let part = |n| TestApp::part_bytes(&session, &data, n);
    let etag1 = put(1, part(1)).await;
    let etag2 = put(2, part(2)).await;
    let early = json!([{"part_number": 3, "etag": "\"0123\""}]);
    let error = refused(register(early).await.expect("request")).await;
    assert_eq!(error["details"]["part_number"], 3, "a part not yet in the bucket is refused");

    let url3 = session["parts"][2]["url"].as_str().expect("url");
    let signed = url::Url::parse(url3).expect("url");
    let signed_headers = signed.query_pairs().find(|(k, _)| k == "X-Amz-SignedHeaders").map(|(_, v)| v.into_owned());
    assert_eq!(signed_headers.as_deref(), Some("content-length;host"), "the URL binds the part size");
    let mut short = part(3);
    short.truncate(1000);
    let response = plain.put(url3).body(short).send().await.expect("put");
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "the bucket refuses a part of another size");
    let all = json!([{"part_number": 1, "etag": etag1}, {"part_number": 2, "etag": etag2}, {"part_number": 3, "etag": "\"0123\""}]);
    refused(register(all).await.expect("request")).await;
    let shown: Value = app.get_upload(&lee, id).await.json().await.expect("json");
    assert_eq!(shown["received_parts"], json!([]), "registration is all or nothing");

    let etag3 = put(3, part(3)).await;
    let all = json!([{"part_number": 1, "etag": etag1}, {"part_number": 2, "etag": etag2}, {"part_number": 3, "etag": etag3}]);
    let response = register(all).await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);

    let response = app.complete(&lee, id).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let video_id = response.json::<Value>().await.expect("json")["video_id"].as_str().expect("id").to_owned();
    assert_eq!(sha256_hex(&app.object(&format!("raw/lee/{video_id}/source.mp4")).await), sha256_hex(&data));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_presigned_url_is_refused_by_the_bucket() {
    let app = spawn_app_with(Backend::PostgresS3, |config| {
        if let Some(s3) = config.storage.s3.as_mut() {
            s3.direct_uploads = true;
        }
    })
    .await;
    let mo = token("mo");
    let data = fake_mp4(11 * MIB);
    let session = app.start_upload(&mo, &data, None).await;
    let url = session["parts"][0]["url"].as_str().expect("url");
    let tampered = [
        url.replace("partNumber=1", "partNumber=2"),
        url.replace("X-Amz-Expires=3600", "X-Amz-Expires=86400"),
        forge_signature(url),
    ];
    for tampered in tampered {
        // An empty body and a fresh connection: the bucket refuses after reading the headers
        // and may close the connection, which must not race with writing a body.
        let response = reqwest::Client::new().put(&tampered).body(Vec::new()).send().await.expect("put");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{tampered}");
    }
    let id = session["upload_id"].as_str().expect("id");
    app.assert_no_staged_parts(id).await;
    let response =
        reqwest::Client::new().put(url).body(TestApp::part_bytes(&session, &data, 1)).send().await.expect("put");
    assert_eq!(response.status(), StatusCode::OK, "the untouched URL works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_needs_direct_uploads() {
    let app = spawn_app_with(Backend::SqliteFs, |_| {}).await;
    let nia = token("nia");
    let session = app.start_upload(&nia, &fake_mp4(MIB), None).await;
    let id = session["upload_id"].as_str().expect("id");
    let body = json!({"parts": [{"part_number": 1, "etag": "x"}]});
    let response = app
        .http
        .post(app.url(&format!("/v1/videos/uploads/{id}/parts")))
        .bearer_auth(&nia)
        .json(&body)
        .send()
        .await
        .expect("request");
    let (status, error) = error_code(response).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::CONFLICT, Some("direct_uploads_disabled")));
}

/// The same URL with the last hex digit of its signature changed.
fn forge_signature(url: &str) -> String {
    let mut forged = url.to_owned();
    let last = forged.pop().expect("non-empty url");
    forged.push(if last == '0' { '1' } else { '0' });
    forged
}
