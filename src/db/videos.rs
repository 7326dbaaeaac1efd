//! Queries on `video_assets`.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::uploads::{corrupt, parse_user, parse_uuid};
use super::{Db, DbError, with_pool};
use crate::auth::UserId;
use crate::video::{Video, VideoStatus};

/// A video row created at upload completion, in status `processing`.
#[derive(Debug)]
pub struct NewVideo {
    /// Video id (reserved by the upload session).
    pub id: Uuid,
    /// Owner.
    pub creator_id: UserId,
    /// Source upload session.
    pub upload_id: Uuid,
    /// Key of the assembled source object.
    pub origin_object_key: String,
    /// Completion time.
    pub created_at: DateTime<Utc>,
}

pub(super) const INSERT_VIDEO: &str = "INSERT INTO video_assets \
    (video_id, creator_user_id, upload_session_id, status, origin_object_key, generation, created_at, updated_at) \
    VALUES ($1, $2, $3, 'processing', $4, 1, $5, $5)";

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
}

impl TryFrom<VideoRow> for Video {
    type Error = DbError;

    fn try_from(row: VideoRow) -> Result<Self, DbError> {
        Ok(Video {
            id: parse_uuid(&row.video_id)?,
            creator_id: parse_user(&row.creator_user_id)?,
            upload_id: parse_uuid(&row.upload_session_id)?,
            status: VideoStatus::parse(&row.status)
                .ok_or_else(|| corrupt("video status", &row.status))?,
            origin_object_key: row.origin_object_key,
            generation: row.generation,
            failed_reason: row.failed_reason,
            retryable: row.retryable,
            created_at: row.created_at,
        })
    }
}

impl Db {
    /// Loads a video.
    pub async fn get_video(&self, id: Uuid) -> Result<Option<Video>, DbError> {
        let sql = "SELECT video_id, creator_user_id, upload_session_id, status, origin_object_key, generation, \
                   failed_reason, retryable, created_at FROM video_assets WHERE video_id = $1";
        let row: Option<VideoRow> = with_pool!(self, pool => sqlx::query_as(sql).bind(id.to_string()).fetch_optional(pool).await?);
        row.map(Video::try_from).transpose()
    }
}
