//! The origin's in-memory hot tier (the first of the seed's cache layers): a size-bounded cache
//! of packaged objects of ready videos, in front of the object store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Objects larger than this are served from the store without caching.
const MAX_ENTRY_BYTES: usize = 16 << 20;

/// An object held in memory.
#[derive(Debug)]
pub struct CachedObject {
    /// Its bytes.
    pub bytes: Bytes,
    /// Its strong ETag, quoted.
    pub etag: String,
}

/// The cache, weighed in bytes, with hit/miss accounting.
#[derive(Clone)]
pub struct HotTier {
    cache: moka::future::Cache<String, Arc<CachedObject>>,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
}

impl HotTier {
    /// A tier keeping at most `capacity_bytes`.
    pub fn new(capacity_bytes: u64) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|_key: &String, object: &Arc<CachedObject>| u32::try_from(object.bytes.len()).unwrap_or(u32::MAX))
            .build();
        HotTier { cache, hits: Arc::default(), misses: Arc::default() }
    }

    /// The cached object for `key`, counting the hit or miss.
    pub async fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        let found = self.cache.get(key).await;
        let (counter, result) = if found.is_some() { (&self.hits, "hit") } else { (&self.misses, "miss") };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("hot_tier_requests_total", "result" => result).increment(1);
        let hits = self.hits.load(Ordering::Relaxed) as f64;
        let total = hits + self.misses.load(Ordering::Relaxed) as f64;
        metrics::gauge!("hot_tier_hit_ratio").set(hits / total);
        found
    }

    /// Keeps `object` unless it is too large to be worth memory.
    pub async fn insert(&self, key: String, object: Arc<CachedObject>) {
        if object.bytes.len() <= MAX_ENTRY_BYTES {
            self.cache.insert(key, object).await;
        }
    }
}
