//! Per-view beacon state: what each viewer's view of a video has already counted, so a repeated
//! `startup`, `complete` or `support_click` (or a progress below the furthest one) adds nothing.

use chrono::{DateTime, Utc};

use super::{Db, DbError, EngagementDelta, with_pool};
use crate::model::{UserId, VideoId};

/// What one batch reports about one view.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewReport {
    /// The video.
    pub video_id: VideoId,
    /// The client's view id (empty: the viewer's one view of the video).
    pub view_id: String,
    /// A `startup` was sent.
    pub started: bool,
    /// Furthest watched fraction reported (0..=1; `complete` is 1).
    pub furthest: f64,
    /// A `support_click` was sent.
    pub clicked: bool,
}

impl Db {
    /// Records `reports` of `viewer` and returns, per report, the engagement it adds beyond what
    /// the same view already counted. One viewer's batches are serialized (an advisory lock on
    /// PostgreSQL, the single writer on SQLite), so concurrent duplicates count once.
    pub async fn record_views(
        &self,
        viewer: &UserId,
        reports: &[ViewReport],
        now: DateTime<Utc>,
    ) -> Result<Vec<(VideoId, EngagementDelta)>, DbError> {
        let lock = match self {
            Db::Sqlite(_) => "UPDATE beacon_views SET updated_at = updated_at WHERE viewer_id = $1 AND 1 = 0",
            Db::Postgres(_) => "SELECT pg_advisory_xact_lock(hashtextextended('reel.beacon:' || $1, 0))",
        };
        let select = "SELECT started, watched, support_clicked FROM beacon_views \
                      WHERE viewer_id = $1 AND video_id = $2 AND view_id = $3";
        let upsert = "INSERT INTO beacon_views (viewer_id, video_id, view_id, started, watched, support_clicked, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (viewer_id, video_id, view_id) DO UPDATE SET \
                      started = excluded.started, watched = excluded.watched, \
                      support_clicked = excluded.support_clicked, updated_at = excluded.updated_at";
        let mut deltas = Vec::with_capacity(reports.len());
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock).bind(viewer.as_str()).execute(&mut *tx).await?;
            for report in reports {
                let video_id = report.video_id.to_string();
                let before: Option<(i64, f64, i64)> = sqlx::query_as(select)
                    .bind(viewer.as_str())
                    .bind(&video_id)
                    .bind(&report.view_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let (started, watched, clicked) = before.unwrap_or((0, 0.0, 0));
                let delta = EngagementDelta {
                    views: i64::from(report.started && started == 0),
                    watched: (report.furthest - watched).max(0.0),
                    support_clicks: i64::from(report.clicked && clicked == 0),
                };
                sqlx::query(upsert)
                    .bind(viewer.as_str())
                    .bind(&video_id)
                    .bind(&report.view_id)
                    .bind(started.max(i64::from(report.started)))
                    .bind(watched.max(report.furthest))
                    .bind(clicked.max(i64::from(report.clicked)))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                deltas.push((report.video_id, delta));
            }
            tx.commit().await?;
        });
        Ok(deltas)
    }
}
