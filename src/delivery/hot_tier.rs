//! The origin's in-memory hot tier (the first of the seed's cache layers): a size-bounded cache
//! of packaged objects of ready videos, in front of the object store.
//!
//! Everything a response needs that depends only on the bytes is computed once, when the object
//! enters memory: the ETag header value, what kind of playlist it is, and the gzip encoding of a
//! playlist. A hit then costs one lookup and a few reference-count increments.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::HeaderValue;
use sha2::{Digest, Sha256};

/// Objects larger than this are served from the store without caching.
const MAX_ENTRY_BYTES: usize = 16 << 20;

/// What a playlist's text says about how long it may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistShape {
    /// A master playlist (variants, no segments).
    Master,
    /// A media playlist that may still gain segments (no `#EXT-X-ENDLIST`).
    Growing,
    /// A complete media playlist.
    Complete,
}

impl PlaylistShape {
    fn of(bytes: &[u8]) -> Self {
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        if !has(b"#EXT-X-TARGETDURATION") {
            PlaylistShape::Master
        } else if has(b"#EXT-X-ENDLIST") {
            PlaylistShape::Complete
        } else {
            PlaylistShape::Growing
        }
    }
}

/// An object held in memory, with what its responses need precomputed.
#[derive(Debug)]
pub struct CachedObject {
    /// Its bytes.
    pub bytes: Bytes,
    /// Its strong ETag, quoted, as a header value.
    pub etag: HeaderValue,
    /// Playlists: their shape and their gzip encoding (with its own ETag).
    pub playlist: Option<Playlist>,
}

/// A playlist's precomputed facts.
#[derive(Debug)]
pub struct Playlist {
    /// Master, growing or complete.
    pub shape: PlaylistShape,
    /// The gzip-encoded bytes, served to clients that accept gzip.
    pub gzip: Bytes,
    /// The ETag of the gzip encoding (a different representation, so a different strong tag).
    pub gzip_etag: HeaderValue,
}

impl CachedObject {
    /// Wraps `bytes`; `playlist` says whether it is an HLS playlist (shape and gzip computed now).
    pub fn new(bytes: Bytes, playlist: bool) -> Self {
        let digest = hex::encode(Sha256::digest(&bytes));
        let tag = &digest[..32];
        let playlist = playlist.then(|| Playlist {
            shape: PlaylistShape::of(&bytes),
            gzip: gzip(&bytes),
            gzip_etag: header_value(format!("\"{tag}-gz\"")),
        });
        CachedObject { etag: header_value(format!("\"{tag}\"")), bytes, playlist }
    }

    /// Memory it holds, for the tier's weigher.
    fn weight(&self) -> usize {
        self.bytes.len() + self.playlist.as_ref().map_or(0, |p| p.gzip.len())
    }
}

fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

fn gzip(bytes: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 2 + 32), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().map(Bytes::from).unwrap_or_default()
}

/// The cache, weighed in bytes, with hit/miss accounting (counters registered once; the hit
/// ratio is computed when metrics are scraped, not on every lookup).
#[derive(Clone)]
pub struct HotTier {
    cache: moka::sync::Cache<String, Arc<CachedObject>>,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
    hit_counter: metrics::Counter,
    miss_counter: metrics::Counter,
}

impl HotTier {
    /// A tier keeping at most `capacity_bytes`.
    pub fn new(capacity_bytes: u64) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|_key: &String, object: &Arc<CachedObject>| u32::try_from(object.weight()).unwrap_or(u32::MAX))
            .build();
        crate::telemetry::metrics(); // the recorder must exist before handles are registered
        HotTier {
            cache,
            hits: Arc::default(),
            misses: Arc::default(),
            hit_counter: metrics::counter!("hot_tier_requests_total", "result" => "hit"),
            miss_counter: metrics::counter!("hot_tier_requests_total", "result" => "miss"),
        }
    }

    /// The cached object for `key`, counting the hit or miss.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        let found = self.cache.get(key);
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.hit_counter.increment(1);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            self.miss_counter.increment(1);
        }
        found
    }

    /// Keeps `object` unless it is too large to be worth memory.
    pub fn insert(&self, key: String, object: Arc<CachedObject>) {
        if object.bytes.len() <= MAX_ENTRY_BYTES {
            self.cache.insert(key, object);
        }
    }

    /// Sets the `hot_tier_hit_ratio` gauge from the counts so far (called when metrics are scraped).
    pub fn record_hit_ratio(&self) {
        let hits = self.hits.load(Ordering::Relaxed) as f64;
        let total = hits + self.misses.load(Ordering::Relaxed) as f64;
        if total > 0.0 {
            metrics::gauge!("hot_tier_hit_ratio").set(hits / total);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn playlist_shapes_and_gzip_are_computed_once() {
        let growing = b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:4.0,\nseg-00001.m4s\n";
        let object = CachedObject::new(Bytes::from_static(growing), true);
        let playlist = object.playlist.as_ref().expect("a playlist");
        assert_eq!(playlist.shape, PlaylistShape::Growing);
        assert_ne!(playlist.gzip_etag, object.etag);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&playlist.gzip[..]).read_to_end(&mut plain).expect("valid gzip");
        assert_eq!(plain, growing);
        let complete = [growing.as_slice(), b"#EXT-X-ENDLIST\n"].concat();
        assert_eq!(PlaylistShape::of(&complete), PlaylistShape::Complete);
        assert_eq!(
            PlaylistShape::of(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n"),
            PlaylistShape::Master
        );
        assert!(CachedObject::new(Bytes::from_static(b"\0\0"), false).playlist.is_none());
    }
}
