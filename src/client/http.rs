//! The HTTP client: one typed method per reel API call.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ETAG, HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ClientError;
use super::model::{
    Completed, CreateUpload, FeedPage, PartReceipt, PartTarget, RegisterPart, UploadSession, VideoView,
};

/// Header carrying a part's SHA-256 (hex), checked by reel before it keeps the part.
pub const SHA256_HEADER: &str = "x-reel-checksum-sha256";

/// A connection to one reel server on behalf of one user.
#[derive(Debug, Clone)]
pub struct ReelClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// `GET /v1/videos/{id}`: the typed view, the body as sent, and the server's `Retry-After`.
#[derive(Debug, Clone)]
pub struct VideoReply {
    /// The parsed view.
    pub view: VideoView,
    /// The JSON body, unabridged.
    pub body: Value,
    /// `Retry-After`, sent while processing.
    pub retry_after: Option<Duration>,
}

impl ReelClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`), sending `token` as bearer.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build()?;
        Ok(ReelClient { http, base: base.trim_end_matches('/').to_owned(), token })
    }

    /// The server's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /v1/videos/uploads`.
    pub async fn create_upload(&self, request: &CreateUpload) -> Result<UploadSession, ClientError> {
        json(self.authed(self.http.post(self.url("/v1/videos/uploads"))).json(request)).await
    }

    /// `GET /v1/videos/uploads/{id}`.
    pub async fn upload(&self, upload_id: &str) -> Result<UploadSession, ClientError> {
        json(self.authed(self.http.get(self.url(&format!("/v1/videos/uploads/{upload_id}"))))).await
    }

    /// PUTs one part to its target and answers its ETag. reel's own URLs get the bearer token
    /// and the SHA-256 header; presigned bucket URLs get neither (the signature covers the rest).
    pub async fn put_part(&self, target: &PartTarget, body: Bytes, sha256: &str) -> Result<String, ClientError> {
        let mut request = self.http.put(&target.url).body(body);
        for (name, value) in &target.headers {
            request = request.header(name, value);
        }
        if !self.is_own(&target.url) {
            return etag(send(request).await?);
        }
        let receipt: PartReceipt = json(self.authed(request).header(SHA256_HEADER, sha256)).await?;
        Ok(receipt.etag)
    }

    /// Whether `url` is served by reel itself (as opposed to a presigned bucket URL).
    pub fn is_own(&self, url: &str) -> bool {
        url.strip_prefix(&self.base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// `POST /v1/videos/uploads/{id}/parts`: registers parts PUT straight to the bucket.
    pub async fn register_parts(&self, upload_id: &str, parts: Vec<RegisterPart>) -> Result<(), ClientError> {
        let url = self.url(&format!("/v1/videos/uploads/{upload_id}/parts"));
        send(self.authed(self.http.post(url)).json(&serde_json::json!({ "parts": parts }))).await.map(drop)
    }

    /// `POST /v1/videos/uploads/{id}/complete`: answers the video id.
    pub async fn complete(&self, upload_id: &str) -> Result<String, ClientError> {
        let url = self.url(&format!("/v1/videos/uploads/{upload_id}/complete"));
        let completed: Completed = json(self.authed(self.http.post(url))).await?;
        Ok(completed.video_id)
    }

    /// `GET /v1/videos/{id}`.
    pub async fn video(&self, video_id: &str) -> Result<VideoReply, ClientError> {
        let response = send(self.authed(self.http.get(self.url(&format!("/v1/videos/{video_id}"))))).await?;
        let retry_after = retry_after(response.headers());
        let body: Value = response.json().await?;
        let view = serde_json::from_value(body.clone()).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(VideoReply { view, body, retry_after })
    }

    /// `GET /v1/feed/videos?limit=N`.
    pub async fn feed(&self, limit: u32, cursor: Option<&str>) -> Result<FeedPage, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        query.extend(cursor.map(|c| ("cursor", c.to_owned())));
        json(self.authed(self.http.get(self.url("/v1/feed/videos")).query(&query))).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authed(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// Sends and turns any non-2xx answer into [`ClientError::Api`].
async fn send(request: RequestBuilder) -> Result<Response, ClientError> {
    let response = request.send().await?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let text = |key: &str| body["error"][key].as_str().map(str::to_owned);
    Err(ClientError::Api {
        status,
        code: text("code").unwrap_or_else(|| "http_error".into()),
        message: text("message").unwrap_or_else(|| format!("HTTP {status}")),
        retry_after,
    })
}

async fn json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, ClientError> {
    Ok(send(request).await?.json().await?)
}

fn etag(response: Response) -> Result<String, ClientError> {
    let value = response.headers().get(ETAG).and_then(|v| v.to_str().ok());
    value
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Protocol("the bucket answered a part PUT without an ETag".into()))
}

/// `Retry-After` in seconds (the HTTP-date form is not used by reel).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_urls_are_recognised_by_their_base() {
        let client = ReelClient::new("http://127.0.0.1:8080/", None).unwrap();
        assert_eq!(client.base(), "http://127.0.0.1:8080");
        assert!(client.is_own("http://127.0.0.1:8080/v1/videos/uploads/u/parts/1"));
        assert!(!client.is_own("http://127.0.0.1:80801/v1/x"));
        assert!(!client.is_own("https://bucket.s3.amazonaws.com/staging/u?X-Amz-Signature=abc"));
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
    }
}
