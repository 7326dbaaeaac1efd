//! Queries on `video_assets`.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::jobs::{FINISH_JOB, bind_new_job, hold_lease};
use super::outbox::bind_event;
use super::rows::{corrupt, parse_id, parse_user};
use super::{Db, DbError, with_pool};
use crate::model::UserId;
use crate::model::score::ScoreInputs;
use crate::model::{FailureReason, Generation, Job, NewJob, OutboxEvent, UploadId, VideoId};
use crate::model::{Video, VideoStatus};

/// A video row created at upload completion, in status `processing`.
#[derive(Debug)]
pub struct NewVideo {
    /// Video id (reserved by the upload session).
    pub id: VideoId,
    /// Owner.
    pub creator_id: UserId,
    /// Source upload session.
    pub upload_id: UploadId,
    /// Key of the assembled source object.
    pub origin_object_key: String,
    /// Completion time.
    pub created_at: DateTime<Utc>,
}

pub(super) const INSERT_VIDEO: &str = "INSERT INTO video_assets \
    (video_id, creator_user_id, upload_session_id, status, origin_object_key, generation, created_at, updated_at, processing_since) \
    VALUES ($1, $2, $3, 'processing', $4, 1, $5, $5, $5)";

#[derive(FromRow)]
struct VideoRow {
    video_id: String,
    creator_user_id: String,
    upload_session_id: String,
    status: String,
    origin_object_key: String,
    generation: i64,
    failed_reason: Option<String>,
    retryable: Option<bool>,
    created_at: DateTime<Utc>,
    processing_since: Option<DateTime<Utc>>,
}

impl TryFrom<VideoRow> for Video {
    type Error = DbError;

    fn try_from(row: VideoRow) -> Result<Self, DbError> {
        Ok(Video {
            id: parse_id(&row.video_id)?,
            creator_id: parse_user(&row.creator_user_id)?,
            upload_id: parse_id(&row.upload_session_id)?,
            status: VideoStatus::parse(&row.status).ok_or_else(|| corrupt("video status", &row.status))?,
            origin_object_key: row.origin_object_key,
            generation: Generation::new(row.generation),
            failed_reason: row.failed_reason,
            retryable: row.retryable,
            created_at: row.created_at,
            processing_since: row.processing_since,
        })
    }
}

impl Db {
    /// Loads a video.
    pub async fn get_video(&self, id: VideoId) -> Result<Option<Video>, DbError> {
        let sql = "SELECT video_id, creator_user_id, upload_session_id, status, origin_object_key, generation, \
                   failed_reason, retryable, created_at, processing_since FROM video_assets WHERE video_id = $1";
        let row: Option<VideoRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(id.to_string()).fetch_optional(pool).await?);
        row.map(Video::try_from).transpose()
    }
}

/// What the probe learned, stored on the video.
#[derive(Debug, Clone)]
pub struct ProbeFacts {
    /// Duration.
    pub duration_ms: i64,
    /// Display width (after rotation).
    pub width: i64,
    /// Display height (after rotation).
    pub height: i64,
    /// Whether the source has an audio stream.
    pub has_audio: bool,
}

/// A packaged rendition.
#[derive(Debug, Clone)]
pub struct NewRendition {
    /// Ladder name, e.g. `720p`.
    pub profile: String,
    /// Pixel width.
    pub width: i64,
    /// Pixel height.
    pub height: i64,
    /// Measured peak bitrate in kb/s.
    pub bitrate_kbps: i64,
    /// Key of the media playlist.
    pub playlist_key: String,
    /// Segments in the playlist.
    pub segment_count: i64,
    /// RFC 6381 codecs string.
    pub codec: String,
}

/// A rendition as stored.
#[derive(Debug, Clone, FromRow)]
pub struct RenditionRow {
    /// Ladder name.
    pub profile: String,
    /// Pixel width.
    pub width: i64,
    /// Pixel height.
    pub height: i64,
    /// Peak bitrate in kb/s.
    pub bitrate_kbps: i64,
    /// Key of the media playlist.
    #[sqlx(rename = "playlist_url")]
    pub playlist_key: String,
    /// Segments in the playlist.
    pub segment_count: i64,
    /// RFC 6381 codecs string.
    pub codec: String,
    /// `packaged` until published, then `ready`.
    pub status: String,
}

/// A terminal pipeline outcome to record.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// Why, in the creators' vocabulary.
    pub reason: FailureReason,
    /// The raw cause for admins (recorded on the failing job's `last_error`), if any.
    pub detail: &'a str,
    /// Whether a reprocess may succeed.
    pub retryable: bool,
    /// The job whose claim fails the video: the failure lands only while that claim holds it.
    /// `None` for a failure from outside the queue (the hard timeout).
    pub by: Option<&'a Job>,
}

const UPSERT_RENDITION: &str = "INSERT INTO video_renditions (id, video_id, generation, profile, width, height, \
    bitrate_kbps, playlist_url, segment_count, codec, status, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
    ON CONFLICT (video_id, generation, profile) DO UPDATE SET width = excluded.width, \
    height = excluded.height, bitrate_kbps = excluded.bitrate_kbps, playlist_url = excluded.playlist_url, \
    segment_count = excluded.segment_count, codec = excluded.codec, status = excluded.status";

const FAIL_VIDEO: &str = "UPDATE video_assets SET status = 'failed', failed_reason = $3, retryable = $4, updated_at = $5 \
    WHERE video_id = $1 AND generation = $2 AND status = 'processing'";
const CANCEL_JOBS: &str = "UPDATE video_processing_jobs SET status = 'cancelled', lease_owner = NULL, \
    lease_expires_at = NULL, updated_at = $3 WHERE video_id = $1 AND generation <= $2 AND status IN ('queued', 'running')";

impl Db {
    /// Stores the probe's findings on the video (idempotent), while `job`'s claim holds it.
    /// `false` when the claim lost the job.
    pub async fn record_probe(&self, job: &Job, facts: &ProbeFacts, now: DateTime<Utc>) -> Result<bool, DbError> {
        let sql = "UPDATE video_assets SET duration_ms = $3, width = $4, height = $5, has_audio = $6, \
                   updated_at = $7 WHERE video_id = $1 AND generation = $2";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if !hold_lease!(tx, job, now) {
                return Ok(false);
            }
            sqlx::query(sql)
                .bind(job.video_id.to_string()).bind(job.generation.get()).bind(facts.duration_ms).bind(facts.width)
                .bind(facts.height).bind(facts.has_audio).bind(now)
                .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Stores the key of a generation's poster, while `job`'s claim holds it. `false` when the
    /// claim lost the job.
    pub async fn set_thumbnail(&self, job: &Job, key: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
        let sql = "UPDATE video_assets SET thumbnail_url = $3, updated_at = $4 WHERE video_id = $1 AND generation = $2";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if !hold_lease!(tx, job, now) {
                return Ok(false);
            }
            sqlx::query(sql).bind(job.video_id.to_string()).bind(job.generation.get()).bind(key).bind(now)
                .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Records that a processing generation can be played from `preview_key` (the preview master
    /// of the start rungs), while `job`'s claim holds it. The first time, `event`
    /// (`video_playable`) is written with it and `Some(true)` returned; a restarted phase 1 only
    /// moves the preview to its new epoch (`Some(false)`). `None` when the claim lost the job.
    pub async fn mark_playable(
        &self,
        job: &Job,
        preview_key: &str,
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, DbError> {
        let first = "UPDATE video_assets SET playable_at = $3, preview_manifest_url = $4, updated_at = $3 \
                     WHERE video_id = $1 AND generation = $2 AND status = 'processing' AND playable_at IS NULL";
        let again = "UPDATE video_assets SET preview_manifest_url = $3, updated_at = $4 \
                     WHERE video_id = $1 AND generation = $2 AND status = 'processing'";
        let (video_id, generation) = (job.video_id, job.generation);
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if !hold_lease!(tx, job, now) {
                return Ok(None);
            }
            let marked = sqlx::query(first)
                .bind(video_id.to_string()).bind(generation.get()).bind(now).bind(preview_key)
                .execute(&mut *tx).await?.rows_affected();
            if marked == 1 {
                bind_event!(event).execute(&mut *tx).await?;
            } else {
                sqlx::query(again).bind(video_id.to_string()).bind(generation.get()).bind(preview_key).bind(now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Some(marked == 1))
        })
    }

    /// Stores what phase 1 published (JSON, read back by phase 2) with its renditions, while
    /// `job`'s claim holds it (idempotent: a rerun replaces them). `false` when the claim lost
    /// the job.
    pub async fn record_start(
        &self,
        job: &Job,
        start: &str,
        renditions: &[NewRendition],
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE video_assets SET start_ladder = $3 WHERE video_id = $1 AND generation = $2";
        let (video_id, generation) = (job.video_id, job.generation);
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if !hold_lease!(tx, job, now) {
                return Ok(false);
            }
            for r in renditions {
                sqlx::query(UPSERT_RENDITION)
                    .bind(Uuid::now_v7().to_string()).bind(video_id.to_string()).bind(generation.get()).bind(&r.profile)
                    .bind(r.width).bind(r.height).bind(r.bitrate_kbps).bind(&r.playlist_key)
                    .bind(r.segment_count).bind(&r.codec).bind("packaged").bind(now)
                    .execute(&mut *tx).await?;
            }
            sqlx::query(sql).bind(video_id.to_string()).bind(generation.get()).bind(start).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// What phase 1 of the current generation published, if it finished.
    pub async fn start_ladder(&self, video_id: VideoId, generation: Generation) -> Result<Option<String>, DbError> {
        let sql = "SELECT start_ladder FROM video_assets WHERE video_id = $1 AND generation = $2";
        let row: Option<Option<String>> = with_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(video_id.to_string()).bind(generation.get()).fetch_optional(pool).await?);
        Ok(row.flatten())
    }

    /// The renditions of a generation, lowest bitrate first.
    pub async fn renditions_of(&self, video_id: VideoId, generation: Generation) -> Result<Vec<RenditionRow>, DbError> {
        let sql = "SELECT profile, width, height, bitrate_kbps, playlist_url, segment_count, codec, status \
                   FROM video_renditions WHERE video_id = $1 AND generation = $2 ORDER BY bitrate_kbps";
        let rows = with_pool!(self, pool => sqlx::query_as(sql).bind(video_id.to_string()).bind(generation.get()).fetch_all(pool).await?);
        Ok(rows)
    }

    /// Fails a processing generation: the video becomes `failed`, its open jobs are cancelled
    /// and `event` (`video_failed`) is written, together. `false` when the generation was no
    /// longer processing (already failed, timed out or superseded).
    pub async fn fail_video(
        &self,
        video_id: VideoId,
        generation: Generation,
        failure: Failure<'_>,
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(job) = failure.by
                && !hold_lease!(tx, job, now)
            {
                return Ok(false);
            }
            let failed = sqlx::query(FAIL_VIDEO)
                .bind(video_id.to_string()).bind(generation.get()).bind(failure.reason.as_str()).bind(failure.retryable).bind(now)
                .execute(&mut *tx).await?;
            if failed.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query(CANCEL_JOBS).bind(video_id.to_string()).bind(generation.get()).bind(now).execute(&mut *tx).await?;
            if let Some(job) = failure.by {
                sqlx::query("UPDATE video_processing_jobs SET error_message = $2 WHERE id = $1")
                    .bind(job.id.to_string()).bind(failure.detail).execute(&mut *tx).await?;
            }
            bind_event!(event).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Publishes a generation: the finishing job (held by its claim) is done, its renditions and
    /// the video become `ready` with the manifest key, and `events` (`video_ready`, plus
    /// `video_ladder_completed` when nothing is left for phase 2) are written, together. `ladder`
    /// is the phase-2 job to enqueue; without one the ladder is complete now. `false` when the
    /// job was lost or the generation is no longer processing.
    pub async fn publish_video(
        &self,
        job: &Job,
        manifest_key: &str,
        events: &[OutboxEvent],
        ladder: Option<&NewJob>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let ready = "UPDATE video_assets SET status = 'ready', manifest_url = $3, published_at = $4, updated_at = $4, \
                     ladder_completed_at = $5, failed_reason = NULL, retryable = NULL \
                     WHERE video_id = $1 AND generation = $2 AND status = 'processing'";
        let renditions = "UPDATE video_renditions SET status = 'ready' WHERE video_id = $1 AND generation = $2";
        let ladder_complete = ladder.is_none().then_some(now);
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let finished = sqlx::query(FINISH_JOB).bind(job.id.to_string()).bind(job.lease.to_string()).bind(now).execute(&mut *tx).await?;
            let published = sqlx::query(ready)
                .bind(job.video_id.to_string()).bind(job.generation.get()).bind(manifest_key).bind(now).bind(ladder_complete)
                .execute(&mut *tx).await?;
            if finished.rows_affected() == 0 || published.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query(renditions).bind(job.video_id.to_string()).bind(job.generation.get()).execute(&mut *tx).await?;
            for event in events {
                bind_event!(event).execute(&mut *tx).await?;
            }
            if let Some(ladder) = ladder {
                bind_new_job!(ladder, now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Publishes phase 2: the job (held by its claim) is done, the remaining `renditions` are
    /// recorded ready, the video's manifest moves to the versioned `master_key` and `event`
    /// (`video_ladder_completed`) is written, together. `false` when the job was lost or the
    /// generation is no longer the ready one.
    pub async fn complete_ladder(
        &self,
        job: &Job,
        master_key: &str,
        renditions: &[NewRendition],
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let complete = "UPDATE video_assets SET manifest_url = $3, ladder_completed_at = $4, ladder_failed_reason = NULL, \
                        updated_at = $4 WHERE video_id = $1 AND generation = $2 AND status = 'ready'";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let finished = sqlx::query(FINISH_JOB).bind(job.id.to_string()).bind(job.lease.to_string()).bind(now).execute(&mut *tx).await?;
            let completed = sqlx::query(complete)
                .bind(job.video_id.to_string()).bind(job.generation.get()).bind(master_key).bind(now)
                .execute(&mut *tx).await?;
            if finished.rows_affected() == 0 || completed.rows_affected() == 0 {
                return Ok(false);
            }
            for r in renditions {
                sqlx::query(UPSERT_RENDITION)
                    .bind(Uuid::now_v7().to_string()).bind(job.video_id.to_string()).bind(job.generation.get()).bind(&r.profile)
                    .bind(r.width).bind(r.height).bind(r.bitrate_kbps).bind(&r.playlist_key)
                    .bind(r.segment_count).bind(&r.codec).bind("ready").bind(now)
                    .execute(&mut *tx).await?;
            }
            bind_event!(event).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Records that phase 2 of a ready generation gave up with `reason`; the video stays ready
    /// with its start rungs.
    pub async fn fail_ladder(
        &self,
        video_id: VideoId,
        generation: Generation,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let sql = "UPDATE video_assets SET ladder_failed_reason = $3, updated_at = $4 \
                   WHERE video_id = $1 AND generation = $2 AND status = 'ready' AND ladder_completed_at IS NULL";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(video_id.to_string()).bind(generation.get()).bind(reason).bind(now).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Runs a failed phase 2 of a ready video again (same generation: the video stays ready and
    /// in the feed), with `extra_attempts` more attempts. Returns the generation, or `None` when
    /// the video's ladder has not failed.
    pub async fn retry_ladder(
        &self,
        video_id: VideoId,
        extra_attempts: u32,
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<Generation>, DbError> {
        let clear = "UPDATE video_assets SET ladder_failed_reason = NULL, updated_at = $2 \
                     WHERE video_id = $1 AND status = 'ready' AND ladder_failed_reason IS NOT NULL \
                     AND ladder_completed_at IS NULL RETURNING generation";
        let requeue = "UPDATE video_processing_jobs SET status = 'queued', run_after = $3, \
                       max_attempts = attempt + $4, updated_at = $3 \
                       WHERE video_id = $1 AND generation = $2 AND stage = 'ladder' AND status = 'cancelled'";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let generation: Option<i64> = sqlx::query_scalar(clear).bind(video_id.to_string()).bind(now).fetch_optional(&mut *tx).await?;
            let Some(generation) = generation.map(Generation::new) else {
                return Ok(None);
            };
            sqlx::query(requeue).bind(video_id.to_string()).bind(generation.get()).bind(now).bind(i64::from(extra_attempts))
                .execute(&mut *tx).await?;
            bind_event!(event).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(generation))
        })
    }

    /// Videos processing since before `cutoff` (the hard-timeout candidates).
    pub async fn overdue_videos(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(VideoId, Generation)>, DbError> {
        let sql = "SELECT video_id, generation FROM video_assets \
                   WHERE status = 'processing' AND processing_since < $1 ORDER BY processing_since LIMIT $2";
        let rows: Vec<(String, i64)> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(cutoff).bind(limit).fetch_all(pool).await?);
        rows.into_iter().map(|(id, generation)| Ok((parse_id(&id)?, Generation::new(generation)))).collect()
    }

    /// Ready videos whose phase 2 (`ladder` job) has been queued or running since before
    /// `cutoff` (counted from when it was last queued to run) and has neither finished nor
    /// failed: the phase-2 hard-timeout candidates.
    pub async fn overdue_ladders(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(VideoId, Generation)>, DbError> {
        let sql = "SELECT v.video_id, v.generation FROM video_assets v JOIN video_processing_jobs j \
                   ON j.video_id = v.video_id AND j.generation = v.generation AND j.stage = 'ladder' \
                   WHERE v.status = 'ready' AND v.ladder_completed_at IS NULL AND v.ladder_failed_reason IS NULL \
                   AND j.status IN ('queued', 'running') AND j.run_after < $1 ORDER BY j.run_after LIMIT $2";
        let rows: Vec<(String, i64)> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(cutoff).bind(limit).fetch_all(pool).await?);
        rows.into_iter().map(|(id, generation)| Ok((parse_id(&id)?, Generation::new(generation)))).collect()
    }

    /// Stops phase 2 of a ready generation for good with `reason`: its ladder job is cancelled
    /// (a worker running it loses its lease and kills its ffmpeg) and the reason recorded; the
    /// video stays ready on its start rungs. `false` when phase 2 was no longer open.
    pub async fn stop_ladder(
        &self,
        video_id: VideoId,
        generation: Generation,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let record = "UPDATE video_assets SET ladder_failed_reason = $3, updated_at = $4 \
                      WHERE video_id = $1 AND generation = $2 AND status = 'ready' \
                      AND ladder_completed_at IS NULL AND ladder_failed_reason IS NULL";
        let cancel = "UPDATE video_processing_jobs SET status = 'cancelled', error_message = $3, lease_owner = NULL, \
                      lease_token = NULL, lease_expires_at = NULL, updated_at = $4 \
                      WHERE video_id = $1 AND generation = $2 AND stage = 'ladder' AND status IN ('queued', 'running')";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let recorded = sqlx::query(record)
                .bind(video_id.to_string()).bind(generation.get()).bind(reason).bind(now)
                .execute(&mut *tx).await?.rows_affected();
            if recorded == 0 {
                return Ok(false);
            }
            sqlx::query(cancel).bind(video_id.to_string()).bind(generation.get()).bind(reason).bind(now)
                .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Videos that failed for good (not retryable) before `cutoff` whose raw source is still
    /// stored: `(video, source key)`.
    pub async fn expired_sources(&self, cutoff: DateTime<Utc>, limit: i64) -> Result<Vec<(VideoId, String)>, DbError> {
        let sql = "SELECT video_id, origin_object_key FROM video_assets WHERE status = 'failed' AND retryable = $3 \
                   AND source_deleted_at IS NULL AND updated_at < $1 ORDER BY updated_at LIMIT $2";
        let rows: Vec<(String, String)> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(cutoff).bind(limit).bind(false).fetch_all(pool).await?);
        rows.into_iter().map(|(id, key)| Ok((parse_id(&id)?, key))).collect()
    }

    /// Records that a video's raw source was deleted.
    pub async fn mark_source_deleted(&self, video_id: VideoId, now: DateTime<Utc>) -> Result<(), DbError> {
        let sql = "UPDATE video_assets SET source_deleted_at = $2 WHERE video_id = $1";
        with_pool!(self, pool => sqlx::query(sql).bind(video_id.to_string()).bind(now).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Ready videos whose current generation was published before `cutoff` and that still store
    /// the trees of generations it replaced: `(video, first generation kept, current)`.
    pub async fn replaced_generations(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(VideoId, Generation, Generation)>, DbError> {
        let sql = "SELECT video_id, pruned_below, generation FROM video_assets WHERE status = 'ready' \
                   AND generation > pruned_below AND published_at < $1 ORDER BY published_at LIMIT $2";
        let rows: Vec<(String, i64, i64)> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(cutoff).bind(limit).fetch_all(pool).await?);
        rows.into_iter()
            .map(|(id, below, current)| Ok((parse_id(&id)?, Generation::new(below), Generation::new(current))))
            .collect()
    }

    /// Records that the trees of every generation below `kept` were deleted.
    pub async fn mark_pruned(&self, video_id: VideoId, kept: Generation) -> Result<(), DbError> {
        let sql = "UPDATE video_assets SET pruned_below = $2 WHERE video_id = $1 AND pruned_below < $2";
        with_pool!(self, pool => sqlx::query(sql).bind(video_id.to_string()).bind(kept.get()).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Starts a new generation of a `ready` or `failed` video and enqueues its first job,
    /// together; the old generation's open jobs are cancelled. Returns the new generation, or
    /// `None` when the video is not in a reprocessable state.
    pub async fn reprocess_video(
        &self,
        video_id: VideoId,
        first: &NewJob,
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> Result<Option<Generation>, DbError> {
        let bump = "UPDATE video_assets SET generation = generation + 1, status = 'processing', failed_reason = NULL, \
                    retryable = NULL, processing_since = $2, updated_at = $2, playable_at = NULL, \
                    preview_manifest_url = NULL, start_ladder = NULL, ladder_completed_at = NULL, \
                    ladder_failed_reason = NULL \
                    WHERE video_id = $1 AND status IN ('ready', 'failed') RETURNING generation";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let generation: Option<i64> = sqlx::query_scalar(bump).bind(video_id.to_string()).bind(now).fetch_optional(&mut *tx).await?;
            let Some(generation) = generation.map(Generation::new) else {
                return Ok(None);
            };
            sqlx::query(CANCEL_JOBS).bind(video_id.to_string()).bind(generation.get() - 1).bind(now).execute(&mut *tx).await?;
            let job = NewJob { generation, ..first.clone() };
            bind_new_job!(job, now).execute(&mut *tx).await?;
            bind_event!(event).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(generation))
        })
    }

    /// Sets a creator's follower count (a value-score input).
    pub async fn set_follower_count(
        &self,
        creator: &UserId,
        followers: i64,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let sql = "INSERT INTO creators (creator_id, follower_count, updated_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (creator_id) DO UPDATE SET follower_count = excluded.follower_count, updated_at = excluded.updated_at";
        with_pool!(self, pool => sqlx::query(sql).bind(creator.as_str()).bind(followers).bind(now).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// The value-score inputs of a video.
    pub async fn score_inputs(&self, video_id: VideoId) -> Result<ScoreInputs, DbError> {
        let sql = "SELECT COALESCE(c.follower_count, 0), v.early_watch_through, v.early_support_click_rate \
                   FROM video_assets v LEFT JOIN creators c ON c.creator_id = v.creator_user_id WHERE v.video_id = $1";
        let row: Option<(i64, Option<f64>, Option<f64>)> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(video_id.to_string()).fetch_optional(pool).await?);
        Ok(row.map_or_else(ScoreInputs::default, |(followers, watch, support)| ScoreInputs {
            follower_count: u64::try_from(followers).unwrap_or_default(),
            early_watch_through: watch,
            early_support_click_rate: support,
        }))
    }

    /// Stores a video's value score.
    pub async fn set_value_score(&self, video_id: VideoId, score: f64) -> Result<(), DbError> {
        let sql = "UPDATE video_assets SET value_score = $2 WHERE video_id = $1";
        with_pool!(self, pool => sqlx::query(sql).bind(video_id.to_string()).bind(score).execute(pool).await?.rows_affected());
        Ok(())
    }
}
