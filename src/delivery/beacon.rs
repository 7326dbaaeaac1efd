//! The playback beacon: batched client events that feed `first_play_startup_ms`, rebuffering,
//! and each video's early watch-through and support-click rate (value-score inputs).
//!
//! A client sends one `startup` per view, `progress` with the furthest position when it leaves
//! a video (or `complete`), and `support_click` when the viewer taps support.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::model::VideoId;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Delivery;
use crate::db::{DbError, EngagementDelta};
use crate::model::AuthUser;
use crate::model::score::{self, ScoreWeights};

/// Events per batch.
pub const MAX_EVENTS: usize = 100;
/// Longest plausible startup or stall, in ms.
const MAX_WAIT_MS: u64 = 10 * 60 * 1000;

/// A batch of events.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeaconBatch {
    /// 1 to 100 events.
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
        /// Startup time.
        startup_ms: u64,
    },
    /// Playback stalled.
    Rebuffer {
        /// The video.
        video_id: VideoId,
        /// Stall length.
        duration_ms: u64,
    },
    /// The furthest position reached in this view.
    Progress {
        /// The video.
        video_id: VideoId,
        /// Position reached.
        position_ms: u64,
        /// The video's duration.
        duration_ms: u64,
    },
    /// The view reached the end.
    Complete {
        /// The video.
        video_id: VideoId,
    },
    /// The viewer tapped support.
    SupportClick {
        /// The video.
        video_id: VideoId,
    },
}

impl PlaybackEvent {
    fn video_id(&self) -> VideoId {
        match self {
            PlaybackEvent::Startup { video_id, .. }
            | PlaybackEvent::Rebuffer { video_id, .. }
            | PlaybackEvent::Progress { video_id, .. }
            | PlaybackEvent::Complete { video_id }
            | PlaybackEvent::SupportClick { video_id } => *video_id,
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
                if duration_ms == 0 || position_ms > duration_ms =>
            {
                Err("progress needs 0 <= position_ms <= duration_ms and duration_ms > 0".into())
            }
            _ => Ok(()),
        }
    }
}

/// What was done with a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BeaconReceipt {
    /// Events recorded.
    pub accepted: usize,
    /// Events about unknown videos, dropped.
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
        let known = self.db.existing_videos(&ids).await?;
        let (events, unknown): (Vec<_>, Vec<_>) = batch.events.into_iter().partition(|e| known.contains(&e.video_id()));
        if !unknown.is_empty() {
            metrics::counter!("beacon_events_ignored_total").increment(unknown.len() as u64);
        }
        for (video_id, delta) in aggregate(&events) {
            self.db.add_engagement(video_id, delta).await?;
            let inputs = self.db.score_inputs(video_id).await?;
            self.db.set_value_score(video_id, score::value_score(&self.beacon.weights, &inputs)).await?;
        }
        metrics::counter!("beacon_events_total").increment(events.len() as u64);
        Ok(BeaconReceipt { accepted: events.len(), ignored: unknown.len() })
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

/// Sums a batch into per-video engagement and records the latency histograms.
fn aggregate(events: &[PlaybackEvent]) -> HashMap<VideoId, EngagementDelta> {
    let mut deltas: HashMap<VideoId, EngagementDelta> = HashMap::new();
    let mut furthest: HashMap<VideoId, f64> = HashMap::new();
    for event in events {
        let delta = deltas.entry(event.video_id()).or_default();
        match *event {
            PlaybackEvent::Startup { startup_ms, .. } => {
                delta.views += 1;
                metrics::histogram!("first_play_startup_ms").record(startup_ms as f64);
            }
            PlaybackEvent::Rebuffer { duration_ms, .. } => {
                metrics::histogram!("playback_rebuffer_ms").record(duration_ms as f64)
            }
            PlaybackEvent::Progress { video_id, position_ms, duration_ms } => {
                let fraction = position_ms as f64 / duration_ms as f64;
                let best = furthest.entry(video_id).or_default();
                *best = best.max(fraction);
            }
            PlaybackEvent::Complete { video_id } => {
                furthest.insert(video_id, 1.0);
            }
            PlaybackEvent::SupportClick { .. } => delta.support_clicks += 1,
        }
    }
    for (video_id, fraction) in furthest {
        deltas.entry(video_id).or_default().watched += fraction;
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_sums_views_furthest_progress_and_clicks() {
        let v = VideoId::new();
        let events = [
            PlaybackEvent::Startup { video_id: v, startup_ms: 800 },
            PlaybackEvent::Progress { video_id: v, position_ms: 2_000, duration_ms: 10_000 },
            PlaybackEvent::Progress { video_id: v, position_ms: 5_000, duration_ms: 10_000 },
            PlaybackEvent::SupportClick { video_id: v },
        ];
        let delta = aggregate(&events)[&v];
        assert_eq!((delta.views, delta.support_clicks), (1, 1));
        assert!((delta.watched - 0.5).abs() < 1e-9);
    }

    #[test]
    fn implausible_events_are_refused() {
        let v = VideoId::new();
        assert!(PlaybackEvent::Progress { video_id: v, position_ms: 11, duration_ms: 10 }.check().is_err());
        assert!(PlaybackEvent::Progress { video_id: v, position_ms: 1, duration_ms: 0 }.check().is_err());
        assert!(PlaybackEvent::Startup { video_id: v, startup_ms: MAX_WAIT_MS + 1 }.check().is_err());
        assert!(PlaybackEvent::Complete { video_id: v }.check().is_ok());
    }
}
