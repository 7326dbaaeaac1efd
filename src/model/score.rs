//! `video_value_score` (seed §5.3): how much a video deserves a fast transcode and pre-caching.
//!
//! ```text
//! score = w_followers · min(1, log10(1 + followers) / 7)
//!       + w_watch     · early_watch_through        (0..1, fraction of the video watched)
//!       + w_support   · early_support_click_rate   (0..1)
//! priority = round(1000 · score)
//! ```
//! The follower term saturates at 10 million followers. Missing engagement counts as 0 (a new
//! video has none yet), so at upload time the score is driven by the creator's audience, and
//! engagement lifts it later.

use serde::{Deserialize, Serialize};

/// Weights of the three inputs. `REEL_PIPELINE__SCORE__FOLLOWERS` etc.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoreWeights {
    /// Weight of the creator's audience.
    pub followers: f64,
    /// Weight of early watch-through.
    pub watch_through: f64,
    /// Weight of early support clicks.
    pub support_clicks: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights { followers: 0.5, watch_through: 0.3, support_clicks: 0.2 }
    }
}

/// The inputs of one video's score.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScoreInputs {
    /// The creator's follower count.
    pub follower_count: u64,
    /// Mean fraction watched by early viewers.
    pub early_watch_through: Option<f64>,
    /// Support clicks per early view.
    pub early_support_click_rate: Option<f64>,
}

/// The score, in 0..=sum of weights.
pub fn value_score(weights: &ScoreWeights, inputs: &ScoreInputs) -> f64 {
    let audience = ((1.0 + inputs.follower_count as f64).log10() / 7.0).min(1.0);
    let unit = |x: Option<f64>| x.unwrap_or(0.0).clamp(0.0, 1.0);
    weights.followers * audience
        + weights.watch_through * unit(inputs.early_watch_through)
        + weights.support_clicks * unit(inputs.early_support_click_rate)
}

/// The queue priority for a score.
pub fn priority(score: f64) -> i64 {
    (score * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigger_audiences_and_engagement_score_higher() {
        let w = ScoreWeights::default();
        let nobody = value_score(&w, &ScoreInputs::default());
        let popular = value_score(&w, &ScoreInputs { follower_count: 1_000_000, ..Default::default() });
        let engaging = value_score(
            &w,
            &ScoreInputs {
                follower_count: 1_000_000,
                early_watch_through: Some(0.9),
                early_support_click_rate: Some(0.1),
            },
        );
        assert_eq!(nobody, 0.0);
        assert!(popular > nobody && engaging > popular);
    }

    #[test]
    fn inputs_saturate() {
        let w = ScoreWeights::default();
        let max = ScoreInputs {
            follower_count: u64::MAX,
            early_watch_through: Some(7.0),
            early_support_click_rate: Some(2.0),
        };
        assert!((value_score(&w, &max) - 1.0).abs() < 1e-9);
        assert_eq!(priority(1.0), 1000);
    }
}
