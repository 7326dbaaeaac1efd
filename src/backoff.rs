//! Exponential backoff with "equal jitter", shared by the pipeline's job retries and the upload
//! client's request retries.
//!
//! Retry `n` (1-based) has the step `base · 2^(n-1)`, capped at `max`. The delay is half the
//! step plus a random share of the other half: concurrent retries spread out, yet no delay
//! collapses to zero the way "full jitter" (a random share of the whole step) allows.

use std::time::Duration;

/// The backoff curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The step of the first retry.
    pub base: Duration,
    /// The largest step.
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry `retry` (1-based) for a `jitter` in `[0, 1]`.
    pub fn delay_with(&self, retry: u32, jitter: f64) -> Duration {
        let step = self.base.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1))).min(self.max);
        let half = step / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// The delay before retry `retry` (1-based), with a fresh random jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURVE: Backoff = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(1) };

    #[test]
    fn steps_double_and_are_capped() {
        assert_eq!(CURVE.delay_with(1, 0.0), Duration::from_millis(50));
        assert_eq!(CURVE.delay_with(1, 1.0), Duration::from_millis(100));
        assert_eq!(CURVE.delay_with(3, 0.0), Duration::from_millis(200));
        assert_eq!(CURVE.delay_with(3, 0.5), Duration::from_millis(300));
        assert_eq!(CURVE.delay_with(30, 1.0), Duration::from_secs(1));
        assert_eq!(CURVE.delay_with(u32::MAX, 0.0), Duration::from_millis(500));
    }

    #[test]
    fn random_delays_stay_within_the_step() {
        for retry in 1..=8 {
            let delay = CURVE.delay(retry);
            assert!(delay >= CURVE.delay_with(retry, 0.0) && delay <= CURVE.delay_with(retry, 1.0));
        }
    }
}
