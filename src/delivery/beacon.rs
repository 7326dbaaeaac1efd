//! The playback beacon: batched client events that feed `first_play_startup_ms`, rebuffering,
//! and each video's early watch-through and support-click rate (value-score inputs).
//!
//! A client sends one `startup` per view, `progress` with the furthest position when it leaves
//! a video (or `complete`), and `support_click` when the viewer taps support. Events may carry
//! the client's `view_id`; each view of a viewer counts one view, its furthest position and at
//! most one support click however often they are repeated (without `view_id`, a viewer has one
//! view per video). Events about videos the viewer may not see are ignored like unknown ones.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Delivery;
use crate::db::{DbError, EngagementDelta, ViewReport};
use crate::model::score::{self, ScoreWeights};
use crate::model::{AuthUser, VideoId};

/// Events per batch.
pub const MAX_EVENTS: usize = 100;
/// Longest plausible startup or stall, in ms.
const MAX_WAIT_MS: u64 = 10 * 60 * 1000;
/// Longest plausible video duration or position, in ms (a day).
const MAX_MEDIA_MS: u64 = 24 * 60 * 60 * 1000;

/// A batch of events.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeaconBatch {
    /// 1 to 100 events.
    #[schema(min_items = 1, max_items = 100)]
    pub events: Vec<PlaybackEvent>,
}

/// One client playback event.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlaybackEvent {
    /// Playback began: time from the play request to the first frame.
    Startup {
        /// The video.
        video_id: VideoId,
        /// Startup time (at most 10 minutes).
        #[schema(maximum = 600_000)]
        startup_ms: u64,
        /// The client's id for this view.
        #[serde(default)]
        #[schema(pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
        view_id: Option<Uuid>,
    },
    /// Playback stalled.
    Rebuffer {
        /// The video.
        video_id: VideoId,
        /// Stall length (at most 10 minutes).
        #[schema(maximum = 600_000)]
        duration_ms: u64,
    },
    /// The furthest position reached in this view.
    Progress {
        /// The video.
        video_id: VideoId,
        /// Position reached. An event whose position is past `duration_ms` is ignored.
        #[schema(maximum = 86_400_000)]
        position_ms: u64,
        /// The video's duration.
        #[schema(minimum = 1, maximum = 86_400_000)]
        duration_ms: u64,
        /// The client's id for this view.
        #[serde(default)]
        #[schema(pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
        view_id: Option<Uuid>,
    },
    /// The view reached the end.
    Complete {
        /// The video.
        video_id: VideoId,
        /// The client's id for this view.
        #[serde(default)]
        #[schema(pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
        view_id: Option<Uuid>,
    },
    /// The viewer tapped support.
    SupportClick {
        /// The video.
        video_id: VideoId,
        /// The client's id for this view.
        #[serde(default)]
        #[schema(pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
        view_id: Option<Uuid>,
    },
}

impl PlaybackEvent {
    fn video_id(&self) -> VideoId {
        match self {
            PlaybackEvent::Startup { video_id, .. }
            | PlaybackEvent::Rebuffer { video_id, .. }
            | PlaybackEvent::Progress { video_id, .. }
            | PlaybackEvent::Complete { video_id, .. }
            | PlaybackEvent::SupportClick { video_id, .. } => *video_id,
        }
    }

    /// The view the event belongs to (empty when the client sent no `view_id`).
    fn view_id(&self) -> String {
        match self {
            PlaybackEvent::Startup { view_id, .. }
            | PlaybackEvent::Progress { view_id, .. }
            | PlaybackEvent::Complete { view_id, .. }
            | PlaybackEvent::SupportClick { view_id, .. } => view_id.map(|id| id.to_string()).unwrap_or_default(),
            PlaybackEvent::Rebuffer { .. } => String::new(),
        }
    }

    fn check(&self) -> Result<(), String> {
        match *self {
            PlaybackEvent::Startup { startup_ms: ms, .. } | PlaybackEvent::Rebuffer { duration_ms: ms, .. }
                if ms > MAX_WAIT_MS =>
            {
                Err(format!("{ms} ms is not a plausible wait"))
            }
            PlaybackEvent::Progress { position_ms, duration_ms, .. }
                if duration_ms == 0 || duration_ms > MAX_MEDIA_MS || position_ms > MAX_MEDIA_MS =>
            {
                Err(format!("progress needs 0 < duration_ms <= {MAX_MEDIA_MS} and position_ms <= {MAX_MEDIA_MS}"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the event can be counted: a position past the duration cannot (JSON Schema
    /// cannot state that rule, so such an event is ignored rather than refusing its batch).
    fn plausible(&self) -> bool {
        !matches!(*self, PlaybackEvent::Progress { position_ms, duration_ms, .. } if position_ms > duration_ms)
    }
}

/// What was done with a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BeaconReceipt {
    /// Events about videos the viewer may see. A repeat of a view's `startup`, `complete` or
    /// `support_click` is accepted but counts once.
    pub accepted: usize,
    /// Events dropped: about videos that do not exist or that the viewer may not see (the two
    /// are indistinguishable), or a progress past the duration.
    pub ignored: usize,
}

/// Why a batch was refused.
#[derive(Debug, thiserror::Error)]
pub enum BeaconError {
    /// The batch is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The viewer sent too many events; retry after the delay.
    #[error("too many playback events")]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// The metadata store failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Beacon state: the per-viewer rate limiter (per process) and the score weights.
#[derive(Clone)]
pub struct Beacon {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    weights: ScoreWeights,
}

impl Beacon {
    /// `per_minute` events per viewer, with bursts of the same size.
    pub fn new(per_minute: u32, weights: ScoreWeights) -> Self {
        let rate = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Beacon { limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(rate))), weights }
    }
}

impl Delivery {
    /// Validates, rate-limits and records a batch from `viewer`.
    pub async fn record_beacon(&self, viewer: &AuthUser, batch: BeaconBatch) -> Result<BeaconReceipt, BeaconError> {
        let count = batch.events.len();
        if !(1..=MAX_EVENTS).contains(&count) {
            return Err(BeaconError::Invalid(format!("a batch holds 1 to {MAX_EVENTS} events, got {count}")));
        }
        for (n, event) in batch.events.iter().enumerate() {
            event.check().map_err(|why| BeaconError::Invalid(format!("event {n}: {why}")))?;
        }
        self.admit(viewer, count)?;
        let ids: Vec<VideoId> = batch.events.iter().map(PlaybackEvent::video_id).collect();
        let visible = self.db.visible_videos(&viewer.id, &ids).await?;
        let (events, ignored): (Vec<_>, Vec<_>) =
            batch.events.into_iter().partition(|e| visible.contains(&e.video_id()) && e.plausible());
        if !ignored.is_empty() {
            metrics::counter!("beacon_events_ignored_total").increment(ignored.len() as u64);
        }
        let reports = views(&events);
        let mut deltas: HashMap<VideoId, EngagementDelta> = HashMap::new();
        for (video_id, added) in self.db.record_views(&viewer.id, &reports, Utc::now()).await? {
            let delta = deltas.entry(video_id).or_default();
            delta.views += added.views;
            delta.watched += added.watched;
            delta.support_clicks += added.support_clicks;
        }
        for (video_id, delta) in deltas {
            if delta.views == 0 && delta.watched == 0.0 && delta.support_clicks == 0 {
                continue;
            }
            self.db.add_engagement(video_id, delta).await?;
            let inputs = self.db.score_inputs(video_id).await?;
            self.db.set_value_score(video_id, score::value_score(&self.beacon.weights, &inputs)).await?;
        }
        metrics::counter!("beacon_events_total").increment(events.len() as u64);
        Ok(BeaconReceipt { accepted: events.len(), ignored: ignored.len() })
    }

    fn admit(&self, viewer: &AuthUser, count: usize) -> Result<(), BeaconError> {
        let cost = NonZeroU32::new(u32::try_from(count).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        let limiter = &self.beacon.limiter;
        let limited = |retry_after| BeaconError::RateLimited { retry_after };
        match limiter.check_key_n(&viewer.id.to_string(), cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(limited(
                not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default())),
            )),
            Err(_) => Err(limited(Duration::from_secs(60))),
        }
    }
}

/// Folds a batch into one report per view and records the latency histograms.
fn views(events: &[PlaybackEvent]) -> Vec<ViewReport> {
    let mut views: HashMap<(VideoId, String), ViewReport> = HashMap::new();
    for event in events {
        let key = (event.video_id(), event.view_id());
        let report = views.entry(key).or_insert_with(|| ViewReport {
            video_id: event.video_id(),
            view_id: event.view_id(),
            started: false,
            furthest: 0.0,
            clicked: false,
        });
        match *event {
            PlaybackEvent::Startup { startup_ms, .. } => {
                report.started = true;
                metrics::histogram!("first_play_startup_ms").record(startup_ms as f64);
            }
            PlaybackEvent::Rebuffer { duration_ms, .. } => {
                metrics::histogram!("playback_rebuffer_ms").record(duration_ms as f64)
            }
            PlaybackEvent::Progress { position_ms, duration_ms, .. } => {
                report.furthest = report.furthest.max(position_ms as f64 / duration_ms as f64);
            }
            PlaybackEvent::Complete { .. } => report.furthest = 1.0,
            PlaybackEvent::SupportClick { .. } => report.clicked = true,
        }
    }
    views.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_folds_into_one_report_per_view() {
        let (v, view_id) = (VideoId::new(), None);
        let events = [
            PlaybackEvent::Startup { video_id: v, startup_ms: 800, view_id },
            PlaybackEvent::Progress { video_id: v, position_ms: 2_000, duration_ms: 10_000, view_id },
            PlaybackEvent::Progress { video_id: v, position_ms: 5_000, duration_ms: 10_000, view_id },
            PlaybackEvent::SupportClick { video_id: v, view_id },
            PlaybackEvent::SupportClick { video_id: v, view_id },
            PlaybackEvent::Complete { video_id: v, view_id: Some(Uuid::now_v7()) },
        ];
        let mut reports = views(&events);
        reports.sort_by(|a, b| a.view_id.cmp(&b.view_id));
        assert_eq!(reports.len(), 2, "two views");
        assert!(reports[0].started && reports[0].clicked && (reports[0].furthest - 0.5).abs() < 1e-9);
        assert!(!reports[1].started && !reports[1].clicked && reports[1].furthest == 1.0);
    }

    #[test]
    fn implausible_events_are_refused_or_ignored() {
        let v = VideoId::new();
        assert!(!PlaybackEvent::Progress { video_id: v, position_ms: 11, duration_ms: 10, view_id: None }.plausible());
        assert!(PlaybackEvent::Progress { video_id: v, position_ms: 10, duration_ms: 10, view_id: None }.plausible());
        assert!(
            PlaybackEvent::Progress { video_id: v, position_ms: 1, duration_ms: 0, view_id: None }.check().is_err()
        );
        assert!(PlaybackEvent::Startup { video_id: v, startup_ms: MAX_WAIT_MS + 1, view_id: None }.check().is_err());
        assert!(PlaybackEvent::Complete { video_id: v, view_id: None }.check().is_ok());
    }
}
