//! The origin: serves `packaged/{video_id}/hls/...` from the object store (through the hot
//! tier) with what a CDN and a player need: exact content types, strong ETags and `304`,
//! single byte ranges (`206`/`416`; a zero-length object is always answered whole), and `Cache-Control` by what the object is and whether its
//! video is published. Only well-formed paths under the packaged prefix are ever looked up.
//!
//! Access: without a token only the published generation of a `ready`, `public` video is
//! served; with a valid playback token (see [`super::signing`]) for that video, also its
//! generation being processed (the creator's preview). Everything else is `404`; a signed
//! video without a valid token is `403`.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use sha2::{Digest, Sha256};

use super::Delivery;
use super::hot_tier::CachedObject;
use super::master::cap_master;
use super::policy;
use crate::db::DbError;
use crate::model::{CacheTier, Generation, PlaybackAccess, VideoId, VideoStatus};
use crate::storage::StorageError;
use crate::storage::keys;

/// Response header carrying the video's cache tier.
pub const CACHE_TIER_HEADER: &str = "x-reel-cache-tier";

/// What the origin knows about a video. Published and unknown videos are cached (for a couple
/// of seconds): both are stable, while a processing video must be looked up every time.
#[derive(Debug, Clone, Copy)]
pub struct OriginVideo {
    /// Whether playback needs a token.
    signed: bool,
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
    /// A signed video without a valid token, or a token that does not open this object (a
    /// rendition above its cap, or a master not capped at or below it).
    #[error("forbidden")]
    Forbidden,
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

fn strong_etag(bytes: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..32])
}

impl Delivery {
    /// Serves one origin request (`GET` or `HEAD`; axum strips the body of `HEAD`), `token`
    /// being the playback token of a `/origin/t/{token}/…` path.
    pub async fn serve(
        &self,
        token: Option<&str>,
        path: &str,
        request: &HeaderMap,
    ) -> Result<Response<Body>, OriginError> {
        let target = keys::parse_packaged(path).ok_or(OriginError::NotFound)?;
        let kind = Kind::of(target.file).ok_or(OriginError::NotFound)?;
        let claims = match token {
            Some(token) => Some(self.keys.verify(token, target.video_id).await.map_err(|_| OriginError::Forbidden)?),
            None => None,
        };
        let video = self.origin_video(target.video_id).await?.ok_or(OriginError::NotFound)?;
        let published = video.published == Some(target.generation);
        let preview = claims.is_some() && video.processing == Some(target.generation);
        if !published && !preview {
            return Err(OriginError::NotFound);
        }
        if claims.is_none() && video.signed {
            return Err(OriginError::Forbidden);
        }
        let capped = if target.is_master() { keys::parse_capped_master(target.file) } else { None };
        if let Some(cap) = claims.and_then(|claims| claims.cap) {
            let above = match target.rendition {
                Some(rendition) => short_side(rendition).is_some_and(|side| side > cap),
                None => target.is_master() && capped.as_ref().is_none_or(|(_, master_cap)| *master_cap > cap),
            };
            if above {
                return Err(OriginError::Forbidden);
            }
        }
        let object = match capped {
            Some((master, cap)) => self.capped_master(path, &master, cap, published).await?,
            None => self.object(path, published).await?,
        };
        let cache_control = self.cache_control(&video, target.generation, kind, &object.bytes);
        Ok(respond(&object, kind, &cache_control, video.tier, request))
    }

    /// Segments, init segments and posters never change under their URL, so they are immutable
    /// as soon as they exist, even while the video is processing. A media playlist still growing
    /// (an `EVENT` playlist without `ENDLIST`) is `no-cache`; once it ends it takes the normal
    /// playlist TTL. Masters of a video still processing are `no-cache`.
    fn cache_control(&self, video: &OriginVideo, generation: Generation, kind: Kind, bytes: &[u8]) -> String {
        let vod = format!("public, max-age={}", self.config.playlist_max_age.as_secs());
        match kind {
            Kind::Playlist if is_growing(bytes) => "no-cache".to_owned(),
            Kind::Playlist if video.published == Some(generation) || is_media_playlist(bytes) => vod,
            Kind::Playlist => "no-cache".to_owned(),
            _ => "public, max-age=31536000, immutable".to_owned(),
        }
    }

    async fn origin_video(&self, video_id: VideoId) -> Result<Option<OriginVideo>, OriginError> {
        if let Some(cached) = self.states.get(&video_id).await {
            return Ok(cached);
        }
        let Some(row) = self.db.playback_row(video_id).await? else {
            self.states.insert(video_id, None).await;
            return Ok(None);
        };
        let tier = policy::cache_tier(
            row.policy.cache_tier_hint,
            row.value_score,
            self.config.hot_score,
            self.config.warm_score,
        );
        let video = OriginVideo {
            signed: row.policy.playback.unwrap_or(self.config.playback) == PlaybackAccess::Signed,
            published: (row.status == VideoStatus::Ready).then_some(row.generation),
            processing: (row.status == VideoStatus::Processing).then_some(row.generation),
            tier,
        };
        if video.published.is_some() {
            self.states.insert(video_id, Some(video)).await;
        }
        Ok(Some(video))
    }

    /// An object, from the hot tier or the store (then kept hot if its video is published).
    async fn object(&self, key: &str, ready: bool) -> Result<Arc<CachedObject>, OriginError> {
        if let Some(hit) = self.hot.get(key).await {
            return Ok(hit);
        }
        let fetched = match self.storage.objects().get(&key.into()).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Err(OriginError::NotFound),
            Err(other) => return Err(StorageError::from(other).into()),
        };
        let bytes = fetched.bytes().await.map_err(StorageError::from)?;
        let object = Arc::new(CachedObject { etag: strong_etag(&bytes), bytes });
        if ready {
            self.hot.insert(key.to_owned(), object.clone()).await;
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
        if let Some(hit) = self.hot.get(path).await {
            return Ok(hit);
        }
        let full_key = keys::sibling(path, master);
        let full = self.object(&full_key, ready).await?;
        let text = std::str::from_utf8(&full.bytes).map_err(|_| OriginError::NotFound)?;
        let capped = Bytes::from(cap_master(text, cap).ok_or(OriginError::NotFound)?);
        let object = Arc::new(CachedObject { etag: strong_etag(&capped), bytes: capped });
        if ready {
            self.hot.insert(path.to_owned(), object.clone()).await;
        }
        Ok(object)
    }
}

/// The short side a rendition directory names (`540p` → 540); `None` for `audio` and others.
fn short_side(rendition: &str) -> Option<u32> {
    rendition.strip_suffix('p')?.parse().ok()
}

fn is_media_playlist(bytes: &[u8]) -> bool {
    bytes.windows(21).any(|w| w == b"#EXT-X-TARGETDURATION")
}

/// A media playlist that may still gain segments.
fn is_growing(bytes: &[u8]) -> bool {
    is_media_playlist(bytes) && !bytes.windows(14).any(|w| w == b"#EXT-X-ENDLIST")
}

fn respond(
    object: &CachedObject,
    kind: Kind,
    cache_control: &str,
    tier: CacheTier,
    request: &HeaderMap,
) -> Response<Body> {
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, kind.content_type())
        .header(header::ETAG, &object.etag)
        .header(header::CACHE_CONTROL, cache_control)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(CACHE_TIER_HEADER, tier.as_str());
    if not_modified(request, &object.etag) {
        return response.status(StatusCode::NOT_MODIFIED).body(Body::empty()).unwrap_or_default();
    }
    let len = object.bytes.len() as u64;
    let range = request.get(header::RANGE).and_then(|v| v.to_str().ok()).map(http_range_header::parse_range_header);
    let (status, body) = match range {
        Some(Ok(parsed)) if len > 0 => match clamp_suffixes(parsed, len).validate(len) {
            Ok(ranges) if ranges.len() == 1 => {
                let (start, end) = (*ranges[0].start(), *ranges[0].end());
                response = response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
                (StatusCode::PARTIAL_CONTENT, object.bytes.slice(start as usize..=end as usize))
            }
            Ok(_) => (StatusCode::OK, object.bytes.clone()),
            Err(_) => {
                response = response.header(header::CONTENT_RANGE, format!("bytes */{len}"));
                (StatusCode::RANGE_NOT_SATISFIABLE, Bytes::new())
            }
        },
        Some(_) | None => (StatusCode::OK, object.bytes.clone()),
    };
    response.status(status).body(Body::from(body)).unwrap_or_default()
}

/// A suffix range longer than the object selects the whole object (RFC 9110 §14.1.3).
fn clamp_suffixes(mut parsed: http_range_header::ParsedRanges, len: u64) -> http_range_header::ParsedRanges {
    use http_range_header::StartPosition;
    for range in &mut parsed.ranges {
        if let StartPosition::FromLast(suffix) = range.start {
            range.start = StartPosition::FromLast(suffix.min(len));
        }
    }
    parsed
}

fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn only_media_playlists_without_endlist_are_growing() {
        let growing = b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:4.0,\nseg-00001.m4s\n";
        assert!(is_growing(growing));
        assert!(!is_growing(&[growing.as_slice(), b"#EXT-X-ENDLIST\n"].concat()));
        assert!(!is_growing(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n"));
    }

    fn ranged(bytes: &'static [u8], range: &'static str) -> Response<Body> {
        let object = CachedObject { etag: strong_etag(bytes), bytes: Bytes::from_static(bytes) };
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static(range));
        respond(&object, Kind::Segment, "no-store", CacheTier::Warm, &headers)
    }

    #[test]
    fn a_suffix_longer_than_the_object_selects_all_of_it() {
        let response = ranged(b"0123456789", "bytes=-500");
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 0-9/10");
        let response = ranged(b"0123456789", "bytes=-3");
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 7-9/10");
        assert_eq!(ranged(b"0123456789", "bytes=10-").status(), StatusCode::RANGE_NOT_SATISFIABLE);
    }

    #[test]
    fn a_zero_length_object_is_answered_whole_for_any_range() {
        for range in ["bytes=0-", "bytes=-5", "bytes=0-0", "bytes=3-9"] {
            let response = ranged(b"", range);
            assert_eq!(response.status(), StatusCode::OK, "{range}");
            assert!(!response.headers().contains_key(header::CONTENT_RANGE), "{range}");
        }
    }

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"a\", W/\"b\""));
        assert!(not_modified(&headers, "\"b\""));
        assert!(!not_modified(&headers, "\"c\""));
    }
}
