//! The retry policy and the retry loop every request goes through.

use std::future::Future;
use std::time::Duration;

use super::error::ClientError;
use crate::backoff::Backoff;

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// Upper bound of any single delay, the server's `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 6, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The backoff curve between attempts.
    pub fn backoff(&self) -> Backoff {
        Backoff { base: self.base_delay, max: self.max_delay }
    }

    /// The delay before retry `retry` after `error`: the server's `Retry-After` when it sent
    /// one (capped), otherwise the jittered backoff.
    pub fn delay_after(&self, retry: u32, error: &ClientError) -> Duration {
        match error.retry_after() {
            Some(asked) => asked.min(self.max_delay),
            None => self.backoff().delay(retry),
        }
    }
}

/// Runs `operation` until it succeeds, fails for good, or runs out of attempts.
/// `on_retry` hears about each transient failure and the delay before the next attempt.
pub async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    mut operation: F,
    mut on_retry: impl FnMut(u32, &ClientError, Duration),
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut attempt = 1;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() && attempt < policy.max_attempts => {
                let delay = policy.delay_after(attempt, &error);
                on_retry(attempt, &error, delay);
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) }
    }

    /// Real sleeps, kept short (tokio's paused clock needs its `test-util` feature).
    fn quick() -> RetryPolicy {
        RetryPolicy { base_delay: Duration::from_millis(2), ..policy() }
    }

    fn server_error(status: u16) -> ClientError {
        ClientError::Api { status, code: "e".into(), message: "m".into(), retry_after: None }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let asked = |secs| ClientError::Api {
            status: 503,
            code: "service_unavailable".into(),
            message: "m".into(),
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(policy().delay_after(1, &asked(0)), Duration::ZERO);
        assert_eq!(policy().delay_after(1, &asked(90)), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let mut retries = Vec::new();
        let answer = retry(
            &quick(),
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(server_error(503)),
                    1 => Err(server_error(429)),
                    _ => Ok("done"),
                }
            },
            |attempt, _, _| retries.push(attempt),
        )
        .await;
        assert_eq!(answer.ok(), Some("done"));
        assert_eq!(retries, [1, 2]);
    }

    #[tokio::test]
    async fn client_errors_are_final_and_attempts_are_bounded() {
        let refusals = AtomicU32::new(0);
        let refused = retry(
            &quick(),
            || async {
                refusals.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(server_error(422))
            },
            |_, _, _| {},
        )
        .await;
        assert_eq!(refused.err().and_then(|e| e.code().map(str::to_owned)).as_deref(), Some("e"));
        assert_eq!(refusals.load(Ordering::SeqCst), 1);
        let calls = AtomicU32::new(0);
        let exhausted = retry(
            &quick(),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(server_error(500))
            },
            |_, _, _| {},
        )
        .await;
        assert!(exhausted.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
