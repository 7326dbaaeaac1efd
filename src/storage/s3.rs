//! S3 multipart staging: the part of the S3 API that `object_store` does not expose
//! (presigned `UploadPart`, `ListParts`, explicit part numbers). Requests are signed with
//! `rusty-s3` and sent with `reqwest`.

use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use rusty_s3::actions::{CompleteMultipartUpload, CreateMultipartUpload, ListParts};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::Deserialize;
use url::Url;

use super::StorageError;
use crate::config::S3Config;

/// A part as S3 lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedPart {
    /// 1-based part number.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// Quoted ETag; some S3-compatible servers (s3s-fs) leave it out of listings.
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    /// Byte length.
    #[serde(rename = "Size")]
    pub size: u64,
}

/// One page of `ListParts`, read leniently: only the fields reel needs, with S3's defaults.
#[derive(Debug, Deserialize)]
struct ListPartsPage {
    #[serde(rename = "Part", default)]
    parts: Vec<ListedPart>,
    #[serde(rename = "IsTruncated", default)]
    is_truncated: bool,
    #[serde(rename = "NextPartNumberMarker")]
    next_part_number_marker: Option<u16>,
}

/// Signs and sends multipart requests against one bucket.
#[derive(Debug, Clone)]
pub struct S3Multipart {
    bucket: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
    presign_ttl: Duration,
}

/// Requests signed for the server's own use only need to live for one round trip.
const INTERNAL_TTL: Duration = Duration::from_secs(300);

impl S3Multipart {
    /// Builds the signer from the S3 settings.
    pub fn new(config: &S3Config, presign_ttl: Duration) -> Result<Self, StorageError> {
        let endpoint: Url = config
            .endpoint
            .parse()
            .map_err(|e| StorageError::Config(format!("invalid S3 endpoint {:?}: {e}", config.endpoint)))?;
        let style = if config.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket = Bucket::new(endpoint, style, config.bucket.clone(), config.region.clone())
            .map_err(|e| StorageError::Config(format!("invalid S3 bucket settings: {e}")))?;
        let credentials = Credentials::new(config.access_key_id.clone(), config.secret_access_key.expose().to_owned());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| StorageError::Config(format!("http client: {e}")))?;
        Ok(S3Multipart { bucket, credentials, http, presign_ttl })
    }

    /// Starts a multipart upload for `key` and returns its upload id.
    pub async fn create(&self, key: &str) -> Result<String, StorageError> {
        let url = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), key).sign(INTERNAL_TTL);
        let body = self.send(self.http.post(url), "CreateMultipartUpload").await?;
        let parsed = CreateMultipartUpload::parse_response(&body)
            .map_err(|e| StorageError::protocol("CreateMultipartUpload", e))?;
        Ok(parsed.upload_id().to_owned())
    }

    /// A presigned `UploadPart` URL a client can PUT the part to.
    /// The URL signs `content-length`, so the bucket refuses a body of any other size.
    pub fn presign_part(&self, key: &str, upload_id: &str, part_number: u32, len: u64) -> Result<Url, StorageError> {
        let number = u16::try_from(part_number).map_err(|_| StorageError::Config("part number above 10000".into()))?;
        let mut action = self.bucket.upload_part(Some(&self.credentials), key, number, upload_id);
        action.headers_mut().insert("content-length", len.to_string());
        Ok(action.sign(self.presign_ttl))
    }

    /// Streams one part into the multipart upload and returns its ETag. If `body` fails, the
    /// request is cut off and S3 keeps nothing of it.
    pub async fn upload_part<S>(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        len: u64,
        body: S,
    ) -> Result<String, StorageError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let number = u16::try_from(part_number).map_err(|_| StorageError::Config("part number above 10000".into()))?;
        let url = self.bucket.upload_part(Some(&self.credentials), key, number, upload_id).sign(INTERNAL_TTL);
        let request =
            self.http.put(url).header(http::header::CONTENT_LENGTH, len).body(reqwest::Body::wrap_stream(body));
        let response = request.send().await.map_err(StorageError::Http)?;
        let response = Self::check(response, "UploadPart").await?;
        response
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| StorageError::protocol("UploadPart", "response has no ETag"))
    }

    /// Lists every part S3 holds for the upload.
    pub async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, StorageError> {
        let mut parts = Vec::new();
        let mut marker = None;
        loop {
            let mut action = ListParts::new(&self.bucket, Some(&self.credentials), key, upload_id);
            if let Some(marker) = marker {
                action.set_part_number_marker(marker);
            }
            let body = self.send(self.http.get(action.sign(INTERNAL_TTL)), "ListParts").await?;
            let text = std::str::from_utf8(&body).map_err(|e| StorageError::protocol("ListParts", e))?;
            let page: ListPartsPage =
                quick_xml::de::from_str(text).map_err(|e| StorageError::protocol("ListParts", e))?;
            parts.extend(page.parts);
            match page.next_part_number_marker.filter(|_| page.is_truncated) {
                Some(next) => marker = Some(next),
                None => return Ok(parts),
            }
        }
    }

    /// Completes the upload from `(part_number, etag)` pairs in ascending order.
    pub async fn complete(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<(), StorageError> {
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.credentials),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(INTERNAL_TTL);
        let body = action.body();
        self.send(self.http.post(url).body(body), "CompleteMultipartUpload").await?;
        Ok(())
    }

    /// Aborts the upload, freeing its parts. An upload that no longer exists is not an error.
    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let url = self.bucket.abort_multipart_upload(Some(&self.credentials), key, upload_id).sign(INTERNAL_TTL);
        let response = self.http.delete(url).send().await.map_err(StorageError::Http)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        Self::check(response, "AbortMultipartUpload").await.map(drop)
    }

    async fn send(&self, request: reqwest::RequestBuilder, op: &'static str) -> Result<Bytes, StorageError> {
        let response = request.send().await.map_err(StorageError::Http)?;
        let response = Self::check(response, op).await?;
        response.bytes().await.map_err(StorageError::Http)
    }

    async fn check(response: reqwest::Response, op: &'static str) -> Result<reqwest::Response, StorageError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Err(StorageError::S3 { op, status, body: body.chars().take(512).collect() })
    }
}
