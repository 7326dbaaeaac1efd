//! Delivery: what a viewer may play and where it lives. Builds the playback and feed answers
//! under the delivery policy, and serves the packaged tree as the CDN's origin.

pub mod beacon;
pub mod hot_tier;
pub mod master;
pub mod origin;
pub mod policy;
pub mod views;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::Utc;

use crate::config::DeliveryConfig;
use crate::db::{Db, DbError, PlaybackRow, RenditionRow, StoredDefaults};
use crate::model::score::ScoreWeights;
use crate::model::{AuthUser, Generation, VideoId, VideoStatus};
use crate::storage::Storage;
use crate::storage::keys::{self, FIRST_SEGMENT, INIT_SEGMENT};
use policy::Defaults;
use views::{DeliveryHints, FailedView, FeedPage, PrefetchHint, ProcessingView, ReadyView, RenditionView, VideoView};

/// Largest feed page.
pub const MAX_PAGE: u32 = 50;

/// The delivery service shared by the playback, feed and origin handlers.
#[derive(Clone)]
pub struct Delivery {
    db: Db,
    storage: Storage,
    config: Arc<DeliveryConfig>,
    base_url: Arc<str>,
    hot: hot_tier::HotTier,
    states: moka::sync::Cache<VideoId, origin::OriginVideo>,
    playlist_cache_control: http::HeaderValue,
    beacon: beacon::Beacon,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// An invalid feed cursor.
#[derive(Debug, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

impl Delivery {
    /// Builds the service; `public_url` is this server's base, used when no CDN base is set.
    pub fn new(db: Db, storage: Storage, config: DeliveryConfig, weights: ScoreWeights, public_url: &str) -> Self {
        let base_url = match &config.public_base_url {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None => format!("{}/origin", public_url.trim_end_matches('/')),
        };
        let hot = hot_tier::HotTier::new(config.hot_tier_bytes);
        let states = moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(2)).build();
        let beacon = beacon::Beacon::new(config.beacon_events_per_minute, weights);
        let playlist_cache_control =
            http::HeaderValue::try_from(format!("public, max-age={}", config.playlist_max_age.as_secs()))
                .unwrap_or(http::HeaderValue::from_static("no-cache"));
        Delivery {
            db,
            storage,
            config: Arc::new(config),
            base_url: base_url.into(),
            hot,
            states,
            playlist_cache_control,
            beacon,
        }
    }

    /// Publishes the hot tier's hit ratio (called when metrics are scraped).
    pub fn record_hot_tier_ratio(&self) {
        self.hot.record_hit_ratio();
    }

    /// The configuration.
    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// The absolute URL of an origin key.
    pub fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.base_url)
    }

    /// The global defaults in force: an admin's stored ones, else the configuration.
    pub async fn defaults(&self) -> Result<Defaults, DbError> {
        let clamp = |v: i64| u32::try_from(v).unwrap_or(0);
        Ok(match self.db.delivery_defaults().await? {
            Some(stored) => Defaults {
                feed_max_short_side: clamp(stored.feed_max_short_side),
                low_conversion_max_short_side: clamp(stored.low_conversion_max_short_side),
                prefetch_cap: clamp(stored.prefetch_cap),
            },
            None => Defaults {
                feed_max_short_side: self.config.feed_max_short_side,
                low_conversion_max_short_side: self.config.low_conversion_max_short_side,
                prefetch_cap: self.config.prefetch_cap,
            },
        })
    }

    /// Stores new global defaults.
    pub async fn set_defaults(&self, defaults: Defaults) -> Result<(), DbError> {
        let stored = StoredDefaults {
            feed_max_short_side: i64::from(defaults.feed_max_short_side),
            low_conversion_max_short_side: i64::from(defaults.low_conversion_max_short_side),
            prefetch_cap: i64::from(defaults.prefetch_cap),
        };
        self.db.set_delivery_defaults(stored, Utc::now()).await
    }

    /// The video as `viewer` may see it, or `None` (unknown, or not theirs while unpublished).
    pub async fn video(&self, viewer: &AuthUser, video_id: VideoId) -> Result<Option<VideoView>, DbError> {
        let Some(row) = self.db.playback_row(video_id).await? else {
            return Ok(None);
        };
        if !visible(viewer, &row) {
            return Ok(None);
        }
        let renditions = self.renditions(&[&row]).await?;
        let defaults = self.defaults().await?;
        Ok(Some(self.view(viewer, &defaults, row, &renditions)))
    }

    /// A feed page of `limit` (1 to [`MAX_PAGE`], checked by the caller) items for `viewer`,
    /// newest first, with prefetch hints under the cap.
    pub async fn feed(
        &self,
        viewer: &AuthUser,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Result<FeedPage, InvalidCursor>, DbError> {
        let before = match cursor.map(decode_cursor).transpose() {
            Ok(before) => before,
            Err(invalid) => return Ok(Err(invalid)),
        };
        let mut rows = self.db.feed_page(&viewer.id, before, i64::from(limit) + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = more.then(|| rows.last().map(|r| encode_cursor(r.video_id))).flatten();
        let renditions = self.renditions(&rows.iter().collect::<Vec<_>>()).await?;
        let defaults = self.defaults().await?;
        let items: Vec<VideoView> =
            rows.into_iter().map(|row| self.view(viewer, &defaults, row, &renditions)).collect();
        let prefetch = self.prefetch(&items, &renditions, defaults.prefetch_cap);
        Ok(Ok(FeedPage { items, next_cursor, prefetch_cap: defaults.prefetch_cap, prefetch }))
    }

    async fn renditions(&self, rows: &[&PlaybackRow]) -> Result<HashMap<VideoId, Vec<RenditionRow>>, DbError> {
        let ready: Vec<(VideoId, Generation)> =
            rows.iter().filter(|r| r.status == VideoStatus::Ready).map(|r| (r.video_id, r.generation)).collect();
        let mut by_video: HashMap<VideoId, Vec<RenditionRow>> = HashMap::new();
        for (video_id, rendition) in self.db.renditions_for(&ready).await? {
            by_video.entry(video_id).or_default().push(rendition);
        }
        Ok(by_video)
    }

    fn view(
        &self,
        viewer: &AuthUser,
        defaults: &Defaults,
        row: PlaybackRow,
        renditions: &HashMap<VideoId, Vec<RenditionRow>>,
    ) -> VideoView {
        let video_id = row.video_id;
        let thumbnail_url = row.thumbnail_url.as_deref().map(|key| self.url(key));
        match row.status {
            VideoStatus::Ready => {
                let all = renditions.get(&video_id).map(Vec::as_slice).unwrap_or_default();
                let ceiling = policy::ceiling(defaults, &self.config.low_conversion_cohort, viewer.cohort.as_deref());
                let allowed = policy::allowed(all, ceiling, row.policy.max_bitrate_kbps);
                let manifest = row.manifest_url.as_deref().unwrap_or(keys::MASTER_PLAYLIST);
                let master = manifest.rsplit_once('/').map_or(manifest, |(_, file)| file);
                let tier = policy::cache_tier(
                    row.policy.cache_tier_hint,
                    row.value_score,
                    self.config.hot_score,
                    self.config.warm_score,
                );
                VideoView::Ready(ReadyView {
                    video_id,
                    creator_id: row.creator_id.to_string(),
                    created_at: row.created_at,
                    published_at: row.published_at,
                    duration_ms: row.duration_ms,
                    width: row.width,
                    height: row.height,
                    playback_manifest_url: self
                        .url(&keys::sibling(manifest, &policy::master_file(master, &allowed, all))),
                    thumbnail_url,
                    renditions: allowed
                        .iter()
                        .map(|r| RenditionView {
                            profile: r.profile.clone(),
                            width: r.width,
                            height: r.height,
                            bitrate_kbps: r.bitrate_kbps,
                            codecs: r.codec.clone(),
                        })
                        .collect(),
                    ladder_complete: row.ladder_completed_at.is_some(),
                    delivery: DeliveryHints {
                        cache_tier_hint: tier,
                        prefetch_priority: policy::prefetch_priority(row.policy.prefetch_priority, row.value_score),
                        max_short_side: ceiling,
                    },
                })
            }
            VideoStatus::Failed => VideoView::Failed(FailedView {
                video_id,
                creator_id: row.creator_id.to_string(),
                created_at: row.created_at,
                failed_reason: row.failed_reason,
                retryable: row.retryable,
            }),
            VideoStatus::Processing => {
                let since = row.processing_since.unwrap_or(row.created_at);
                VideoView::Processing(ProcessingView {
                    video_id,
                    creator_id: row.creator_id.to_string(),
                    created_at: row.created_at,
                    stage: row.stage.map(|stage| stage.as_str().to_owned()),
                    elapsed_ms: (Utc::now() - since).num_milliseconds().max(0),
                    poll_after_ms: u64::try_from(self.config.poll_after.as_millis()).unwrap_or(u64::MAX),
                    thumbnail_url,
                    playable: row.playable_at.is_some(),
                    playback_manifest_url: row
                        .playable_at
                        .and(row.preview_manifest_url.as_deref())
                        .map(|key| self.url(key)),
                })
            }
        }
    }

    /// Hints for the ready items after the first, at most `cap` of them.
    fn prefetch(
        &self,
        items: &[VideoView],
        renditions: &HashMap<VideoId, Vec<RenditionRow>>,
        cap: u32,
    ) -> Vec<PrefetchHint> {
        items
            .iter()
            .skip(1)
            .filter_map(|item| match item {
                VideoView::Ready(ready) => Some(ready),
                _ => None,
            })
            .filter_map(|ready| {
                let start = ready.renditions.first()?;
                let rendition = renditions.get(&ready.video_id)?.iter().find(|r| r.profile == start.profile)?;
                let dir = rendition.playlist_key.rsplit_once('/')?.0;
                Some(PrefetchHint {
                    video_id: ready.video_id,
                    manifest_url: ready.playback_manifest_url.clone(),
                    init_url: self.url(&format!("{dir}/{INIT_SEGMENT}")),
                    first_segment_url: self.url(&format!("{dir}/{FIRST_SEGMENT}")),
                })
            })
            .take(cap as usize)
            .collect()
    }
}

/// Ready videos are public to signed-in viewers; the rest only to their creator and admins.
fn visible(viewer: &AuthUser, row: &PlaybackRow) -> bool {
    row.status == VideoStatus::Ready || viewer.is_admin() || row.creator_id == viewer.id
}

/// Feed cursors: the base64url (no padding) of the last item's 16-byte id. Any string of 22
/// such characters is a valid position, so a cursor never fails on its content.
pub const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]{22}$";

const CURSOR: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

fn encode_cursor(video_id: VideoId) -> String {
    CURSOR.encode(video_id.as_uuid().as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<VideoId, InvalidCursor> {
    let bytes: [u8; 16] = CURSOR.decode(cursor).ok().and_then(|b| b.try_into().ok()).ok_or(InvalidCursor)?;
    Ok(VideoId::from(uuid::Uuid::from_bytes(bytes)))
}
