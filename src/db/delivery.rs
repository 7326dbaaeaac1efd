//! Queries behind playback and delivery: the feed page, per-video policy, global defaults and
//! engagement counters.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, QueryBuilder};

use super::rows::{corrupt, parse_id, parse_user};
use super::{Db, DbError, RenditionRow, with_pool};
use crate::model::{
    CacheTier, Generation, JobStatus, PlaybackAccess, Stage, UserId, VideoId, VideoPolicy, VideoStatus,
};

/// A video as playback needs it.
#[derive(Debug, Clone)]
pub struct PlaybackRow {
    /// Video id.
    pub video_id: VideoId,
    /// Owner.
    pub creator_id: UserId,
    /// Processing state.
    pub status: VideoStatus,
    /// Current generation.
    pub generation: Generation,
    /// Duration.
    pub duration_ms: Option<i64>,
    /// Display width.
    pub width: Option<i64>,
    /// Display height.
    pub height: Option<i64>,
    /// Key of the published master playlist.
    pub manifest_url: Option<String>,
    /// Key of the poster.
    pub thumbnail_url: Option<String>,
    /// Publication time.
    pub published_at: Option<DateTime<Utc>>,
    /// Failure reason.
    pub failed_reason: Option<String>,
    /// Whether a reprocess may help.
    pub retryable: Option<bool>,
    /// Completion time.
    pub created_at: DateTime<Utc>,
    /// Start of the current generation.
    pub processing_since: Option<DateTime<Utc>>,
    /// Value score.
    pub value_score: f64,
    /// Latest stage of the current generation.
    pub stage: Option<Stage>,
    /// The per-video delivery policy.
    pub policy: VideoPolicy,
    /// When the first start-rung segment of the current generation was stored.
    pub playable_at: Option<DateTime<Utc>>,
    /// Key of the preview master (the start rungs while phase 1 runs).
    pub preview_manifest_url: Option<String>,
    /// When the full ladder was published.
    pub ladder_completed_at: Option<DateTime<Utc>>,
    /// Why phase 2 gave up (the video stays ready with its start rungs).
    pub ladder_failed_reason: Option<String>,
}

/// [`PlaybackRow`] as stored.
#[derive(FromRow)]
struct PlaybackRecord {
    video_id: String,
    creator_user_id: String,
    status: String,
    generation: i64,
    duration_ms: Option<i64>,
    width: Option<i64>,
    height: Option<i64>,
    manifest_url: Option<String>,
    thumbnail_url: Option<String>,
    published_at: Option<DateTime<Utc>>,
    failed_reason: Option<String>,
    retryable: Option<bool>,
    created_at: DateTime<Utc>,
    processing_since: Option<DateTime<Utc>>,
    value_score: f64,
    stage: Option<String>,
    max_bitrate_kbps: Option<i64>,
    prefetch_priority: Option<i64>,
    cache_tier_hint: Option<String>,
    playback: Option<String>,
    playable_at: Option<DateTime<Utc>>,
    preview_manifest_url: Option<String>,
    ladder_completed_at: Option<DateTime<Utc>>,
    ladder_failed_reason: Option<String>,
}

impl TryFrom<PlaybackRecord> for PlaybackRow {
    type Error = DbError;

    fn try_from(row: PlaybackRecord) -> Result<Self, DbError> {
        let cache_tier_hint = match row.cache_tier_hint.as_deref() {
            Some(hint) => Some(CacheTier::parse(hint).ok_or_else(|| corrupt("cache tier", hint))?),
            None => None,
        };
        let playback = match row.playback.as_deref() {
            Some(access) => Some(PlaybackAccess::parse(access).ok_or_else(|| corrupt("playback access", access))?),
            None => None,
        };
        let stage = match row.stage.as_deref() {
            Some(stage) => Some(Stage::parse(stage).ok_or_else(|| corrupt("stage", stage))?),
            None => None,
        };
        Ok(PlaybackRow {
            video_id: parse_id(&row.video_id)?,
            creator_id: parse_user(&row.creator_user_id)?,
            status: VideoStatus::parse(&row.status).ok_or_else(|| corrupt("video status", &row.status))?,
            generation: Generation::new(row.generation),
            duration_ms: row.duration_ms,
            width: row.width,
            height: row.height,
            manifest_url: row.manifest_url,
            thumbnail_url: row.thumbnail_url,
            published_at: row.published_at,
            failed_reason: row.failed_reason,
            retryable: row.retryable,
            created_at: row.created_at,
            processing_since: row.processing_since,
            value_score: row.value_score,
            stage,
            policy: VideoPolicy {
                max_bitrate_kbps: row.max_bitrate_kbps,
                prefetch_priority: row.prefetch_priority,
                cache_tier_hint,
                playback,
            },
            playable_at: row.playable_at,
            preview_manifest_url: row.preview_manifest_url,
            ladder_completed_at: row.ladder_completed_at,
            ladder_failed_reason: row.ladder_failed_reason,
        })
    }
}

const PLAYBACK_COLUMNS: &str = "v.video_id, v.creator_user_id, v.status, v.generation, v.duration_ms, v.width, \
    v.height, v.manifest_url, v.thumbnail_url, v.published_at, v.failed_reason, v.retryable, v.created_at, \
    v.processing_since, v.value_score, \
    (SELECT stage FROM video_processing_jobs j WHERE j.video_id = v.video_id AND j.generation = v.generation \
     ORDER BY j.created_at DESC, j.id DESC LIMIT 1) AS stage, \
    p.max_bitrate_kbps, p.prefetch_priority, p.cache_tier_hint, p.playback, \
    v.playable_at, v.preview_manifest_url, v.ladder_completed_at, v.ladder_failed_reason";

const PLAYBACK_FROM: &str = "FROM video_assets v LEFT JOIN video_delivery_policy p ON p.video_id = v.video_id";

/// A video as the ops listing shows it: its playback row and its current job.
#[derive(Debug, Clone)]
pub struct OpsVideoRow {
    /// The video.
    pub video: PlaybackRow,
    /// Status of the current generation's latest job.
    pub stage_status: Option<JobStatus>,
    /// Its attempt count.
    pub attempts: Option<i64>,
    /// Its last error.
    pub last_error: Option<String>,
}

#[derive(FromRow)]
struct OpsVideoRecord {
    #[sqlx(flatten)]
    video: PlaybackRecord,
    stage_status: Option<String>,
    attempts: Option<i64>,
    last_error: Option<String>,
}

impl TryFrom<OpsVideoRecord> for OpsVideoRow {
    type Error = DbError;

    fn try_from(row: OpsVideoRecord) -> Result<Self, DbError> {
        let stage_status = match row.stage_status.as_deref() {
            Some(status) => Some(JobStatus::parse(status).ok_or_else(|| corrupt("job status", status))?),
            None => None,
        };
        Ok(OpsVideoRow {
            video: row.video.try_into()?,
            stage_status,
            attempts: row.attempts,
            last_error: row.last_error,
        })
    }
}

/// Global delivery defaults as stored (admins change them at runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredDefaults {
    /// Ceiling for feed autoplay, by short side.
    pub feed_max_short_side: i64,
    /// Ceiling for the low-conversion cohort.
    pub low_conversion_max_short_side: i64,
    /// Videos a client may prefetch.
    pub prefetch_cap: i64,
}

/// One playback beacon's effect on a video's engagement.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngagementDelta {
    /// Views started.
    pub views: i64,
    /// Sum of watched fractions (0..1 per view).
    pub watched: f64,
    /// Support clicks.
    pub support_clicks: i64,
}

impl Db {
    /// One video as playback shows it.
    pub async fn playback_row(&self, video_id: VideoId) -> Result<Option<PlaybackRow>, DbError> {
        let sql = format!("SELECT {PLAYBACK_COLUMNS} {PLAYBACK_FROM} WHERE v.video_id = $1");
        let row: Option<PlaybackRecord> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(video_id.to_string()).fetch_optional(pool).await?);
        row.map(PlaybackRow::try_from).transpose()
    }

    /// A feed page for `viewer`: ready videos and the viewer's own processing ones, newest first
    /// (UUIDv7 ids sort by creation), strictly after the `before` cursor.
    pub async fn feed_page(
        &self,
        viewer: &UserId,
        before: Option<VideoId>,
        limit: i64,
    ) -> Result<Vec<PlaybackRow>, DbError> {
        let sql = format!(
            "SELECT {PLAYBACK_COLUMNS} {PLAYBACK_FROM} WHERE (v.status = 'ready' OR (v.status = 'processing' AND v.creator_user_id = $1)) \
             AND (CAST($2 AS TEXT) IS NULL OR v.video_id < $2) ORDER BY v.video_id DESC LIMIT $3"
        );
        let before = before.map(|id| id.to_string());
        let rows: Vec<PlaybackRecord> = with_pool!(self, pool => sqlx::query_as(&sql).bind(viewer.as_str()).bind(&before).bind(limit).fetch_all(pool).await?);
        rows.into_iter().map(PlaybackRow::try_from).collect()
    }

    /// The renditions of each `(video, generation)`, lowest bitrate first.
    pub async fn renditions_for(
        &self,
        videos: &[(VideoId, Generation)],
    ) -> Result<Vec<(VideoId, RenditionRow)>, DbError> {
        if videos.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(FromRow)]
        struct Row {
            video_id: String,
            #[sqlx(flatten)]
            rendition: RenditionRow,
        }
        let rows: Vec<Row> = with_pool!(self, pool => {
            let mut query = QueryBuilder::new(
                "SELECT video_id, profile, width, height, bitrate_kbps, playlist_url, segment_count, codec, status \
                 FROM video_renditions WHERE status = 'ready' AND (",
            );
            for (n, (video_id, generation)) in videos.iter().enumerate() {
                if n > 0 {
                    query.push(" OR ");
                }
                query.push("(video_id = ").push_bind(video_id.to_string()).push(" AND generation = ").push_bind(generation.get()).push(")");
            }
            query.push(") ORDER BY video_id, bitrate_kbps");
            query.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter().map(|row| Ok((parse_id(&row.video_id)?, row.rendition))).collect()
    }

    /// Videos in `status` for the ops listing, oldest first, with their current job.
    pub async fn ops_videos(&self, status: VideoStatus, limit: i64) -> Result<Vec<OpsVideoRow>, DbError> {
        let sql = format!(
            "SELECT {PLAYBACK_COLUMNS}, j.status AS stage_status, j.attempt AS attempts, j.error_message AS last_error \
             {PLAYBACK_FROM} LEFT JOIN video_processing_jobs j ON j.id = ( \
                 SELECT id FROM video_processing_jobs WHERE video_id = v.video_id AND generation = v.generation \
                 ORDER BY created_at DESC, id DESC LIMIT 1) \
             WHERE v.status = $1 ORDER BY v.created_at LIMIT $2"
        );
        let rows: Vec<OpsVideoRecord> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(status.as_str()).bind(limit).fetch_all(pool).await?);
        rows.into_iter().map(OpsVideoRow::try_from).collect()
    }

    /// Sets (replaces) a video's delivery policy.
    pub async fn set_video_policy(
        &self,
        video_id: VideoId,
        policy: &VideoPolicy,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let sql = "INSERT INTO video_delivery_policy (video_id, max_bitrate_kbps, prefetch_priority, cache_tier_hint, playback, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (video_id) DO UPDATE SET \
                   max_bitrate_kbps = excluded.max_bitrate_kbps, prefetch_priority = excluded.prefetch_priority, \
                   cache_tier_hint = excluded.cache_tier_hint, playback = excluded.playback, updated_at = excluded.updated_at";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(video_id.to_string()).bind(policy.max_bitrate_kbps).bind(policy.prefetch_priority)
            .bind(policy.cache_tier_hint.map(CacheTier::as_str)).bind(policy.playback.map(PlaybackAccess::as_str)).bind(now)
            .execute(pool).await?.rows_affected());
        Ok(())
    }

    /// The stored global defaults, if an admin ever set them.
    pub async fn delivery_defaults(&self) -> Result<Option<StoredDefaults>, DbError> {
        let sql = "SELECT feed_max_short_side, low_conversion_max_short_side, prefetch_cap FROM delivery_settings WHERE id = 1";
        let row: Option<(i64, i64, i64)> = with_pool!(self, pool => sqlx::query_as(sql).fetch_optional(pool).await?);
        Ok(row.map(|(feed, low, cap)| StoredDefaults {
            feed_max_short_side: feed,
            low_conversion_max_short_side: low,
            prefetch_cap: cap,
        }))
    }

    /// Stores the global defaults.
    pub async fn set_delivery_defaults(&self, defaults: StoredDefaults, now: DateTime<Utc>) -> Result<(), DbError> {
        let sql = "INSERT INTO delivery_settings (id, feed_max_short_side, low_conversion_max_short_side, prefetch_cap, updated_at) \
                   VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET feed_max_short_side = excluded.feed_max_short_side, \
                   low_conversion_max_short_side = excluded.low_conversion_max_short_side, \
                   prefetch_cap = excluded.prefetch_cap, updated_at = excluded.updated_at";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(defaults.feed_max_short_side).bind(defaults.low_conversion_max_short_side).bind(defaults.prefetch_cap).bind(now)
            .execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Adds beacon engagement to a video and refreshes its early watch-through and support-click
    /// rate (the value-score inputs). `false` when the video does not exist.
    pub async fn add_engagement(&self, video_id: VideoId, delta: EngagementDelta) -> Result<bool, DbError> {
        let sql = "UPDATE video_assets SET engagement_views = engagement_views + $2, \
                   engagement_watched_sum = engagement_watched_sum + $3, \
                   engagement_support_clicks = engagement_support_clicks + $4, \
                   early_watch_through = CASE WHEN engagement_views + $2 > 0 \
                       THEN (engagement_watched_sum + $3) / (engagement_views + $2) ELSE NULL END, \
                   early_support_click_rate = CASE WHEN engagement_views + $2 > 0 \
                       THEN CAST(engagement_support_clicks + $4 AS REAL) / (engagement_views + $2) ELSE NULL END \
                   WHERE video_id = $1";
        let updated = with_pool!(self, pool => sqlx::query(sql)
            .bind(video_id.to_string()).bind(delta.views).bind(delta.watched).bind(delta.support_clicks)
            .execute(pool).await?.rows_affected());
        Ok(updated == 1)
    }

    /// Which of `ids` `viewer` may see: ready videos and the viewer's own. Unknown and hidden
    /// videos are left out alike.
    pub async fn visible_videos(&self, viewer: &UserId, ids: &[VideoId]) -> Result<Vec<VideoId>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String,)> = with_pool!(self, pool => {
            let mut query =
                QueryBuilder::new("SELECT video_id FROM video_assets WHERE (status = 'ready' OR creator_user_id = ");
            query.push_bind(viewer.as_str());
            query.push(") AND video_id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id.to_string());
            }
            query.push(")");
            query.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter().map(|(id,)| parse_id(&id)).collect()
    }
}
