//! The API contract: every rejection is the JSON error body, stored strings are bounded as the
//! document states, and the document itself is exact (shared error answers, links, limits).

use reel::ingest::plan::{CONTENT_TYPE_PATTERN, ETAG_PATTERN, FILENAME_PATTERN};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, MIB, error_code, fake_mp4, spawn_app, spawn_app_with, token};
use crate::on_both_backends;

on_both_backends!(stored_strings_are_bounded, part_registrations_are_well_formed);

/// Asserts a JSON error answer with `status` and `code`.
async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{what}: content-type {content_type}");
    let (_, error) = error_code(response).await;
    assert_eq!(error["code"], code, "{what}");
    assert!(!error["message"].as_str().unwrap_or_default().is_empty(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_is_the_json_error_body() {
    let app = spawn_app(Backend::SqliteFs).await;
    let ann = token("ann");
    let send = |method: Method, path: &str| app.http.request(method, app.url(path)).bearer_auth(&ann);

    let unknown = send(Method::GET, "/v1/nothing-here").send().await.expect("request");
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found", "unknown route").await;

    let wrong_method = send(Method::DELETE, "/v1/feed/videos").send().await.expect("request");
    let allow = wrong_method.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(allow.contains("GET"), "405 names the allowed methods: {allow:?}");
    assert_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "wrong method").await;

    for (query, code) in [
        ("limit=abc", "invalid_query"),
        ("limit=2147483648000", "invalid_query"),
        ("limit=0", "invalid_limit"),
        ("limit=51", "invalid_limit"),
        ("cursor=not-a-cursor", "invalid_cursor"),
    ] {
        let response = send(Method::GET, &format!("/v1/feed/videos?{query}")).send().await.expect("request");
        assert_error(response, StatusCode::BAD_REQUEST, code, query).await;
    }
    let ops = crate::helpers::token_with("ops", reel::model::Role::Admin, None);
    let response =
        app.http.get(app.url("/v1/ops/videos?status=failed&limit=5000")).bearer_auth(&ops).send().await.expect("ops");
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_limit", "ops limit above 1000").await;

    let bad_utf8 = send(Method::GET, "/v1/videos/%FF%FE").send().await.expect("request");
    assert_error(bad_utf8, StatusCode::BAD_REQUEST, "invalid_path", "undecodable path").await;

    let plain = send(Method::POST, "/v1/videos/uploads").body("{}").header("content-type", "text/plain");
    assert_error(
        plain.send().await.expect("request"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "415",
    )
    .await;

    let huge = format!("{{\"events\": [{}]}}", "0,".repeat(1_500_000));
    let response =
        send(Method::POST, "/v1/playback/events").header("content-type", "application/json").body(huge).send().await;
    assert_error(response.expect("request"), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "413").await;
}

async fn stored_strings_are_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    let bo = token("bo");
    let create = |filename: &str, content_type: &str| json!({"filename": filename, "content_type": content_type, "size_bytes": MIB});
    let quoted = format!("\"{}\"", "q".repeat(64));
    let long_type = format!("video/mp4; a={quoted}; b={quoted}; c={quoted}; d={quoted}");
    let refused = [
        (create("a.mp4", &format!("video/{}", "x".repeat(250))), "unsupported_content_type"),
        (create("a.mp4", &format!("video/mp4; a={}", "b".repeat(100 * 1024))), "unsupported_content_type"),
        (create("a.mp4", &long_type), "unsupported_content_type"),
        (create("a.mp4", "video/mp4; a=1; b=2; c=3; d=4; e=5"), "unsupported_content_type"),
        (create("a.mp4", "text/plain"), "unsupported_content_type"),
        (create("a.mp4", "video/"), "unsupported_content_type"),
        (create("a.mp4", "video/mp4\n"), "unsupported_content_type"),
        (create("a.mp4", " video/mp4"), "unsupported_content_type"),
        (create(&"a".repeat(256), "video/mp4"), "invalid_filename"),
        (create("a\u{7}b.mp4", "video/mp4"), "invalid_filename"),
        (create("a\u{85}b.mp4", "video/mp4"), "invalid_filename"),
        (create("   ", "video/mp4"), "invalid_filename"),
        (
            json!({"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": MIB, "sha256": " ab"}),
            "invalid_checksum",
        ),
    ];
    for (body, code) in refused {
        let what = body.to_string().chars().take(120).collect::<String>();
        assert_error(app.create_upload(&bo, body).await, StatusCode::BAD_REQUEST, code, &what).await;
    }
    let accepted = [
        (create("clip.mp4", "application/octet-stream"), "application/octet-stream"),
        (create("clip.mov", "VIDEO/QuickTime"), "video/quicktime"),
        (
            create("clip.mp4", "video/mp4; codecs=\"avc1.64001f, mp4a.40.2\"; a=1; b=2; c=3"),
            "video/mp4; codecs=\"avc1.64001f, mp4a.40.2\"; a=1; b=2; c=3",
        ),
        (create(&"é".repeat(255), "video/mp4"), "video/mp4"),
        (json!({"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 1048576.0}), "video/mp4"),
    ];
    for (body, stored) in accepted {
        let response = app.create_upload(&bo, body.clone()).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{body}");
        let session: Value = response.json().await.expect("json");
        assert_eq!(session["content_type"], stored);
        assert_eq!(session["filename"], body["filename"]);
    }
}

async fn part_registrations_are_well_formed(backend: Backend) {
    let app = spawn_app(backend).await;
    let cy = token("cy");
    let session = app.start_upload(&cy, &fake_mp4(MIB), None).await;
    let url = app.url(&format!("/v1/videos/uploads/{}/parts", session["upload_id"].as_str().expect("id")));
    let good_sha = "ab".repeat(32);
    for (parts, code) in [
        (json!([]), "invalid_parts"),
        (json!([{"part_number": 1, "etag": ""}]), "invalid_etag"),
        (json!([{"part_number": 1, "etag": "\"a b\""}]), "invalid_etag"),
        (json!([{"part_number": 1, "etag": format!("\"{}\"", "f".repeat(200))}]), "invalid_etag"),
        (json!([{"part_number": 1, "etag": "\"abc\"\u{0}"}]), "invalid_etag"),
        (json!([{"part_number": 1, "etag": "\"abc\"", "sha256": "xyz"}]), "invalid_checksum"),
        (json!([{"part_number": 1, "etag": "\"abc\"", "sha256": format!("{good_sha} ")}]), "invalid_checksum"),
    ] {
        let response = app.http.post(&url).bearer_auth(&cy).json(&json!({"parts": parts})).send().await.expect("post");
        assert_error(response, StatusCode::BAD_REQUEST, code, &parts.to_string()).await;
    }
    let well_formed = json!({"parts": [{"part_number": 1, "etag": "\"abc\"", "sha256": good_sha}]});
    let response = app.http.post(&url).bearer_auth(&cy).json(&well_formed).send().await.expect("post");
    let status = response.status();
    assert!(
        status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY,
        "a well-formed registration reaches the state and bucket checks: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_cursors_are_opaque_strings_of_the_documented_pattern() {
    let app = spawn_app(Backend::SqliteFs).await;
    let dee = token("dee");
    for cursor in ["AAAAAAAAAAAAAAAAAAAAAA", "zzzzzzzzzzzzzzzzzzzzz_", "-_-_-_-_-_-_-_-_-_-_-_"] {
        let (status, _, page) = app.get_json(&dee, &format!("/v1/feed/videos?cursor={cursor}")).await;
        assert_eq!(status, StatusCode::OK, "{cursor}: every string of the pattern is a position");
        assert!(page["items"].is_array());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_states_the_contract() {
    let app = spawn_app_with(Backend::SqliteFs, |config| config.uploads.max_size_bytes = 123 * MIB as u64).await;
    let spec: Value = app.http.get(app.url("/openapi.json")).send().await.expect("spec").json().await.expect("json");
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")));

    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(operation_ids.insert(id.to_owned()), "operationId {id} is used twice");
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                assert!(
                    parameter["schema"].is_object(),
                    "{method} {path}: parameter {} has no schema",
                    parameter["name"]
                );
            }
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let documented_error = status.starts_with('4') || status.starts_with('5');
                // `/readyz` answers its own report, and the origin's 416 is an empty range answer.
                if documented_error && !path.starts_with("/readyz") && status != "416" {
                    let reference = response["$ref"].as_str().unwrap_or_default();
                    assert!(
                        reference.starts_with("#/components/responses/"),
                        "{method} {path} {status} uses the shared error answers"
                    );
                }
            }
        }
    }
    for (name, response) in spec["components"]["responses"].as_object().expect("shared responses") {
        let schema = &response["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(schema, "#/components/schemas/ErrorBody", "{name}");
    }
    let has_json_errors = |path: &str, method: &str| {
        let responses = &spec["paths"][path][method]["responses"];
        ["400", "413", "415"].iter().all(|status| responses[status].is_object())
    };
    for (path, method) in [
        ("/v1/videos/uploads", "post"),
        ("/v1/videos/uploads/{id}/parts", "post"),
        ("/v1/playback/events", "post"),
        ("/v1/ops/delivery-policy", "put"),
    ] {
        assert!(has_json_errors(path, method), "{method} {path} documents 400, 413 and 415");
    }

    let created = &spec["paths"]["/v1/videos/uploads"]["post"]["responses"]["201"]["links"];
    for target in ["get_upload", "put_part", "register_parts", "complete_upload", "abort_upload"] {
        assert_eq!(created[target]["operationId"], target);
        assert_eq!(created[target]["parameters"]["id"], "$response.body#/upload_id");
        assert!(operation_ids.contains(target), "the link to {target} resolves");
    }
    let stored = &spec["paths"]["/v1/videos/uploads/{id}/parts/{part}"]["put"]["responses"]["200"]["links"];
    assert_eq!(stored["complete_upload"]["parameters"]["id"], "$request.path.id", "a stored part leads to complete");
    let completed = &spec["paths"]["/v1/videos/uploads/{id}/complete"]["post"]["responses"]["202"]["links"];
    assert_eq!(completed["get_video"]["parameters"]["id"], "$response.body#/video_id");

    let create = &spec["components"]["schemas"]["CreateUpload"]["properties"];
    assert_eq!(create["size_bytes"]["maximum"], 123 * MIB as u64, "the configured limit");
    assert_eq!(create["content_type"]["pattern"], CONTENT_TYPE_PATTERN);
    assert_eq!(create["content_type"]["maxLength"], 255);
    assert_eq!(create["filename"]["pattern"], FILENAME_PATTERN);
    let part = &spec["components"]["schemas"]["RegisterPart"]["properties"];
    assert_eq!(part["etag"]["pattern"], ETAG_PATTERN);
    let events = &spec["components"]["schemas"]["BeaconBatch"]["properties"]["events"];
    assert_eq!((events["minItems"].as_u64(), events["maxItems"].as_u64()), (Some(1), Some(100)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_fallback_answers_other_methods_with_the_json_error() {
    let web = tempfile::tempdir().expect("web dir");
    std::fs::write(web.path().join("index.html"), "<!doctype html><title>reel</title>").expect("index");
    let dir = web.path().to_owned();
    let app = spawn_app_with(Backend::SqliteFs, move |config| config.server.web_dir = dir).await;
    let page = app.http.get(app.url("/upload")).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK, "app paths serve index.html");
    let response = app.http.post(app.url("/upload")).body("x").send().await.expect("post");
    let allow = response.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(allow, "GET, HEAD");
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "POST to the web app").await;
}
