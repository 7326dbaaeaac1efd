//! Origin acceptance: what players and CDNs get from `/origin/packaged/...`.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::helpers::{Backend, TestApp, portrait_clip, spawn_app, token};
use crate::on_both_backends;

on_both_backends!(the_origin_serves_cdn_correct_hls, a_real_player_reads_the_master_end_to_end);

impl TestApp {
    async fn origin(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = self.http.get(self.url(&format!("/origin/{path}")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("origin request");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.bytes().await.expect("body").to_vec())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn scraped(metrics: &str, name: &str) -> f64 {
    metrics.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

async fn the_origin_serves_cdn_correct_hls(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, video_id) = app.upload(&token("ana"), &portrait_clip(360, 640, 2)).await;
    let root = format!("packaged/{video_id}/hls");
    app.drain().await;

    for (file, content_type, cache) in [
        ("master.m3u8", "application/vnd.apple.mpegurl", "public, max-age=60"),
        ("360p/index.m3u8", "application/vnd.apple.mpegurl", "public, max-age=60"),
        ("360p/init.mp4", "video/mp4", "public, max-age=31536000, immutable"),
        ("360p/seg-00001.m4s", "video/iso.segment", "public, max-age=31536000, immutable"),
        ("poster.jpg", "image/jpeg", "public, max-age=31536000, immutable"),
    ] {
        let (status, headers, body) = app.origin(&format!("{root}/{file}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert_eq!(header(&headers, "content-type"), content_type, "{file}");
        assert_eq!(header(&headers, "cache-control"), cache, "{file}");
        assert_eq!(header(&headers, "accept-ranges"), "bytes");
        assert_eq!(header(&headers, "x-reel-cache-tier"), "cold", "a new, unscored video");
        assert!(!body.is_empty());
    }

    let segment = format!("{root}/360p/seg-00001.m4s");
    let (_, headers, full) = app.origin(&segment, &[]).await;
    let etag = header(&headers, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 2);
    let (status, _, body) = app.origin(&segment, &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    let (status, headers, body) = app.origin(&segment, &[("range", "bytes=0-99")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&headers, "content-range"), format!("bytes 0-99/{}", full.len()));
    assert_eq!(body, full[..100]);
    let (status, headers, _) = app.origin(&segment, &[("range", "bytes=-10")]).await;
    assert_eq!(
        (status, header(&headers, "content-range")),
        (StatusCode::PARTIAL_CONTENT, format!("bytes {}-{}/{}", full.len() - 10, full.len() - 1, full.len()).as_str())
    );
    let beyond = format!("bytes={}-", full.len());
    let (status, headers, _) = app.origin(&segment, &[("range", &beyond)]).await;
    assert_eq!(
        (status, header(&headers, "content-range")),
        (StatusCode::RANGE_NOT_SATISFIABLE, format!("bytes */{}", full.len()).as_str())
    );

    let head = app.http.head(app.url(&format!("/origin/{segment}"))).send().await.expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(head.headers(), "content-length"), full.len().to_string());
    assert!(head.bytes().await.expect("body").is_empty());

    let (_, headers, _) = app.origin(&format!("{root}/master.m3u8"), &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&headers, "content-encoding"), "gzip", "playlists are gzip-compressed");
    let (_, headers, _) = app.origin(&segment, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&headers, "content-encoding"), "", "media is never re-compressed");

    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url(&format!("/origin/{segment}")))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "range")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert_eq!(header(preflight.headers(), "access-control-allow-origin"), "*");
    let (_, headers, _) = app.origin(&segment, &[("origin", "https://player.example")]).await;
    assert!(header(&headers, "access-control-expose-headers").contains("content-range"));

    for hostile in [
        format!("{root}/%2e%2e/%2e%2e/%2e%2e/raw/ana/{video_id}/source.mp4"),
        format!("raw/ana/{video_id}/source.mp4"),
        format!("{root}/..%2f..%2fmaster.m3u8"),
        format!("{root}/360p/seg-99999.m4s"),
        format!("{root}/360p/index.m3u8.bak"),
        "packaged/not-a-uuid/hls/master.m3u8".to_owned(),
        format!("packaged/{}/hls/master.m3u8", uuid::Uuid::now_v7()),
    ] {
        let (status, _, _) = app.origin(&hostile, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{hostile}");
    }

    let hits_before = scraped(
        &app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text"),
        "hot_tier_requests_total{result=\"hit\"}",
    );
    app.origin(&segment, &[]).await;
    let metrics = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(
        scraped(&metrics, "hot_tier_requests_total{result=\"hit\"}") > hits_before,
        "a repeated segment is served from the hot tier"
    );
    assert!(metrics.contains("hot_tier_hit_ratio"));
}

async fn a_real_player_reads_the_master_end_to_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, video_id) = app.upload(&token("ben"), &portrait_clip(360, 640, 2)).await;
    app.drain().await;
    let master = app.url(&format!("/origin/packaged/{video_id}/hls/master.m3u8"));
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", &master])
        .output()
        .expect("ffprobe runs");
    let duration: f64 = String::from_utf8_lossy(&probe.stdout).trim().parse().expect("a duration");
    assert!((duration - 2.0).abs() < 0.5, "ffprobe reads {duration}s through the origin");
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i", &master, "-map", "0:v:0", "-map", "0:a:0", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(decode.status.success(), "ffmpeg plays the ladder: {}", String::from_utf8_lossy(&decode.stderr));
    assert!(decode.stderr.is_empty(), "no decode errors: {}", String::from_utf8_lossy(&decode.stderr));
}

/// Every path shape the layout writes (`storage::keys`) reaches the origin's handler: a
/// restarted phase of a reprocessed generation included. Unknown objects are the handler's
/// `object not found`, never the router's `route not found`.
#[tokio::test]
async fn every_packaged_path_shape_is_routed() {
    let app = spawn_app(Backend::SqliteFs).await;
    let root = "packaged/01a22870-8813-73dd-b4cc-abd36a3d34eb/hls";
    for path in [
        "master.m3u8",
        "preview.m3u8",
        "master.v2~540p.m3u8",
        "360p/seg-00001.m4s",
        "g2/master.v2-a2.m3u8",
        "e2/preview.m3u8",
        "g2/360p/init.mp4",
        "e2/360p/index.m3u8",
        "l3/720p/seg-00004.m4s",
        "g2/e2/master.m3u8",
        "g2/e2/360p/seg-00001.m4s",
        "g3/l2/1080p/index.m3u8",
    ] {
        let (status, _, body) = app.origin(&format!("{root}/{path}"), &[]).await;
        let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error");
        assert_eq!(
            (status, body["error"]["message"].as_str()),
            (StatusCode::NOT_FOUND, Some("object not found")),
            "{path}"
        );
    }
}
