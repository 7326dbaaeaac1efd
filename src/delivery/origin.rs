//! The origin: serves `packaged/{video_id}/hls/...` from the object store (through the hot
//! tier) with what a CDN and a player need: exact content types, strong ETags and `304`,
//! single byte ranges (`206`/`416`), and `Cache-Control` by what the object is and whether its
//! video is published. Only well-formed paths under the packaged prefix are ever looked up.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};

use super::Delivery;
use super::hot_tier::{CachedObject, PlaylistShape};
use super::master::cap_master;
use super::policy;
use crate::db::DbError;
use crate::model::{CacheTier, Generation, VideoId, VideoStatus};
use crate::storage::StorageError;
use crate::storage::keys;

/// Response header carrying the video's cache tier.
pub const CACHE_TIER_HEADER: &str = "x-reel-cache-tier";

const CACHE_TIER: HeaderName = HeaderName::from_static(CACHE_TIER_HEADER);
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const GZIP: HeaderValue = HeaderValue::from_static("gzip");
const ACCEPT_ENCODING: HeaderValue = HeaderValue::from_static("accept-encoding");
const BYTES: HeaderValue = HeaderValue::from_static("bytes");

/// What the origin knows about a video. Only published videos are cached (for a couple of
/// seconds): publication is stable, while a processing video must be looked up every time.
#[derive(Debug, Clone, Copy)]
pub struct OriginVideo {
    /// The generation last published, if the video is ready.
    published: Option<Generation>,
    /// The generation being processed, if any (its start rungs may already be playable).
    processing: Option<Generation>,
    tier: CacheTier,
}

/// Why the origin did not serve.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// Malformed path, unknown video or missing object.
    #[error("not found")]
    NotFound,
    /// The metadata store failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The kinds of object the origin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Playlist,
    Init,
    Segment,
    Image,
}

impl Kind {
    fn of(file: &str) -> Option<Self> {
        match file.rsplit_once('.')?.1 {
            "m3u8" => Some(Kind::Playlist),
            "mp4" => Some(Kind::Init),
            "m4s" => Some(Kind::Segment),
            "jpg" => Some(Kind::Image),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Kind::Playlist => "application/vnd.apple.mpegurl",
            Kind::Init => "video/mp4",
            Kind::Segment => "video/iso.segment",
            Kind::Image => "image/jpeg",
        }
    }
}

impl Delivery {
    /// Serves one origin request (`GET` or `HEAD`; axum strips the body of `HEAD`).
    pub async fn serve(&self, path: &str, request: &HeaderMap) -> Result<Response<Body>, OriginError> {
        let target = keys::parse_packaged(path).ok_or(OriginError::NotFound)?;
        let kind = Kind::of(target.file).ok_or(OriginError::NotFound)?;
        let video = self.origin_video(target.video_id).await?.ok_or(OriginError::NotFound)?;
        let published = video.published == Some(target.generation);
        let capped = if target.is_master() { keys::parse_capped_master(target.file) } else { None };
        let object = match capped {
            Some((master, cap)) => self.capped_master(path, &master, cap, published).await?,
            None => self.object(path, published).await?,
        };
        let cache_control = self.cache_control(&video, target.generation, &object);
        Ok(respond(&object, kind, cache_control, video.tier, request))
    }

    /// Segments, init segments and posters never change under their URL, so they are immutable
    /// as soon as they exist, even while the video is processing. A media playlist still growing
    /// (an `EVENT` playlist without `ENDLIST`) is `no-cache`; once it ends it takes the normal
    /// playlist TTL. Masters of a video still processing are `no-cache`; anything of a
    /// generation that is neither published nor processing is `no-store`.
    /// Every value is prebuilt: the playlist's shape was read when it entered memory.
    fn cache_control(&self, video: &OriginVideo, generation: Generation, object: &CachedObject) -> HeaderValue {
        let published = video.published == Some(generation);
        let live = published || video.processing == Some(generation);
        match object.playlist.as_ref().map(|p| p.shape) {
            _ if !live => NO_STORE,
            Some(PlaylistShape::Growing) => NO_CACHE,
            Some(PlaylistShape::Complete) => self.playlist_cache_control.clone(),
            Some(PlaylistShape::Master) if published => self.playlist_cache_control.clone(),
            Some(PlaylistShape::Master) => NO_CACHE,
            None => IMMUTABLE,
        }
    }

    async fn origin_video(&self, video_id: VideoId) -> Result<Option<OriginVideo>, OriginError> {
        if let Some(published) = self.states.get(&video_id) {
            return Ok(Some(published));
        }
        let Some(row) = self.db.playback_row(video_id).await? else {
            return Ok(None);
        };
        let tier = policy::cache_tier(
            row.policy.cache_tier_hint,
            row.value_score,
            self.config.hot_score,
            self.config.warm_score,
        );
        let video = OriginVideo {
            published: (row.status == VideoStatus::Ready).then_some(row.generation),
            processing: (row.status == VideoStatus::Processing).then_some(row.generation),
            tier,
        };
        if video.published.is_some() {
            self.states.insert(video_id, video);
        }
        Ok(Some(video))
    }

    /// An object, from the hot tier or the store (then kept hot if its video is published).
    async fn object(&self, key: &str, ready: bool) -> Result<Arc<CachedObject>, OriginError> {
        if let Some(hit) = self.hot.get(key) {
            return Ok(hit);
        }
        let fetched = match self.storage.objects().get(&key.into()).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Err(OriginError::NotFound),
            Err(other) => return Err(StorageError::from(other).into()),
        };
        let bytes = fetched.bytes().await.map_err(StorageError::from)?;
        let object = Arc::new(CachedObject::new(bytes, Kind::of(key) == Some(Kind::Playlist)));
        if ready {
            self.hot.insert(key.to_owned(), object.clone());
        }
        Ok(object)
    }

    async fn capped_master(
        &self,
        path: &str,
        master: &str,
        cap: u32,
        ready: bool,
    ) -> Result<Arc<CachedObject>, OriginError> {
        if let Some(hit) = self.hot.get(path) {
            return Ok(hit);
        }
        let full_key = keys::sibling(path, master);
        let full = self.object(&full_key, ready).await?;
        let text = std::str::from_utf8(&full.bytes).map_err(|_| OriginError::NotFound)?;
        let capped = Bytes::from(cap_master(text, cap).ok_or(OriginError::NotFound)?);
        let object = Arc::new(CachedObject::new(capped, true));
        if ready {
            self.hot.insert(path.to_owned(), object.clone());
        }
        Ok(object)
    }
}

/// The answer to one request. Headers are prebuilt values; a `304` is decided before the body
/// is looked at, and a playlist goes out in its precomputed gzip encoding when the client accepts
/// gzip and asks for no range.
fn respond(
    object: &CachedObject,
    kind: Kind,
    cache_control: HeaderValue,
    tier: CacheTier,
    request: &HeaderMap,
) -> Response<Body> {
    let range = request.get(header::RANGE);
    let gzip = object.playlist.as_ref().filter(|_| range.is_none() && accepts_gzip(request));
    let (bytes, etag) = match gzip {
        Some(playlist) => (&playlist.gzip, &playlist.gzip_etag),
        None => (&object.bytes, &object.etag),
    };
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind.content_type()));
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, cache_control);
    headers.insert(CACHE_TIER, HeaderValue::from_static(tier.as_str()));
    if object.playlist.is_some() {
        headers.insert(header::VARY, ACCEPT_ENCODING);
    }
    if gzip.is_some() {
        headers.insert(header::CONTENT_ENCODING, GZIP);
    } else {
        headers.insert(header::ACCEPT_RANGES, BYTES);
    }
    if not_modified(request, etag) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    let len = bytes.len() as u64;
    let range = range.and_then(|v| v.to_str().ok()).map(http_range_header::parse_range_header);
    let (status, body) = match range {
        Some(Ok(parsed)) => match parsed.validate(len) {
            Ok(ranges) if ranges.len() == 1 => {
                let (start, end) = (*ranges[0].start(), *ranges[0].end());
                let content_range = HeaderValue::try_from(format!("bytes {start}-{end}/{len}"));
                if let Ok(value) = content_range {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                (StatusCode::PARTIAL_CONTENT, bytes.slice(start as usize..=end as usize))
            }
            Ok(_) => (StatusCode::OK, bytes.clone()),
            Err(_) => {
                if let Ok(value) = HeaderValue::try_from(format!("bytes */{len}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                (StatusCode::RANGE_NOT_SATISFIABLE, Bytes::new())
            }
        },
        Some(Err(_)) | None => (StatusCode::OK, bytes.clone()),
    };
    *response.status_mut() = status;
    *response.body_mut() = Body::from(body);
    response
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0)));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag.as_bytes() == etag || tag == "*")
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn gzip_is_accepted_unless_refused() {
        let accepts = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip, deflate, br"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("br, identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\", W/\"b\""));
        assert!(not_modified(&headers, &HeaderValue::from_static("\"b\"")));
        assert!(!not_modified(&headers, &HeaderValue::from_static("\"c\"")));
    }
}
