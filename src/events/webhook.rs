//! Webhook delivery: claim a due delivery with a lease, POST the envelope signed to the Standard
//! Webhooks spec, record the answer. Any 2xx is success; anything else (including a timeout or
//! a refused connection) is retried with exponential backoff and jitter until `max_attempts`,
//! then the delivery is `failed`. An endpoint that has failed for `disable_after` without one
//! success is disabled. A worker that dies mid-attempt leaves its lease to expire, and the next
//! claim sends the same event again with the same `webhook-id` (at least once).

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Events, idle, signing, target};
use crate::backoff::Backoff;
use crate::db::{AttemptResult, DbError, WebhookDelivery, WebhookEndpoint};

/// Sends deliveries until `shutdown`; idles `webhooks.poll_interval` when none is due.
pub(super) async fn run(events: Events, shutdown: CancellationToken) {
    loop {
        let pause = match events.deliver_next().await {
            Ok(true) => std::time::Duration::ZERO,
            Ok(false) => events.webhooks.poll_interval,
            Err(err) => {
                tracing::warn!(error = %err, "webhook delivery failed; retrying");
                events.webhooks.poll_interval
            }
        };
        if !idle(pause, &shutdown).await {
            return;
        }
    }
}

/// A failed attempt: the HTTP status if one arrived, and what went wrong.
type Failure = (Option<i64>, String);

impl Events {
    /// Claims and attempts one due delivery; `false` when none was due.
    pub async fn deliver_next(&self) -> Result<bool, DbError> {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(self.webhooks.lease).unwrap_or(chrono::Duration::MAX);
        let claimed = self.db.claim_deliveries(&self.worker_id, now + lease, now, 1).await?;
        let Some(delivery) = claimed.into_iter().next() else {
            return Ok(false);
        };
        let endpoint = match delivery.endpoint_id.parse::<Uuid>() {
            Ok(id) => self.db.get_endpoint(id).await?,
            Err(_) => None,
        };
        let outcome = match &endpoint {
            None => Err((None, "the endpoint no longer exists".to_owned())),
            Some(e) if e.disabled_at.is_some() => Err((None, "the endpoint is disabled".to_owned())),
            Some(e) => self.send(e, &delivery).await,
        };
        self.record(&delivery, endpoint.as_ref(), outcome).await?;
        Ok(true)
    }

    /// One POST of the envelope to the endpoint.
    async fn send(&self, endpoint: &WebhookEndpoint, delivery: &WebhookDelivery) -> Result<i64, Failure> {
        let url = target::check(&endpoint.url, self.webhooks.allow_private_targets)
            .await
            .map_err(|e| (None, format!("refused: {e}")))?;
        let now = Utc::now();
        let timestamp = now.timestamp();
        let signature =
            signing::header(&endpoint.signing_secrets(now), &delivery.event_id, timestamp, delivery.body.as_bytes());
        let answer = self
            .http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone())
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => Ok(i64::from(response.status().as_u16())),
            Ok(response) => {
                let status = response.status().as_u16();
                Err((Some(i64::from(status)), format!("the endpoint answered HTTP {status}")))
            }
            Err(err) if err.is_timeout() => Err((None, "timed out".to_owned())),
            Err(err) => Err((None, format!("request failed: {}", without_url(&err)))),
        }
    }

    /// Records an attempt's outcome and the endpoint's health.
    async fn record(
        &self,
        delivery: &WebhookDelivery,
        endpoint: Option<&WebhookEndpoint>,
        outcome: Result<i64, Failure>,
    ) -> Result<(), DbError> {
        let now = Utc::now();
        let live = endpoint.is_some_and(|e| e.disabled_at.is_none());
        let result = match &outcome {
            Ok(status) => {
                self.db.endpoint_succeeded(&delivery.endpoint_id, now).await?;
                AttemptResult::Delivered { status: *status }
            }
            Err((status, error)) => {
                if live {
                    let disable_before =
                        now - chrono::Duration::from_std(self.webhooks.disable_after).unwrap_or_default();
                    if self.db.endpoint_failed(&delivery.endpoint_id, now, disable_before).await? {
                        tracing::warn!(endpoint_id = %delivery.endpoint_id, "webhook endpoint disabled after failing too long");
                    }
                }
                let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
                if !live || attempts >= self.webhooks.max_attempts {
                    AttemptResult::Failed { status: *status, error }
                } else {
                    AttemptResult::Retry { status: *status, error, next_at: self.next_attempt(attempts, now) }
                }
            }
        };
        let recorded = self.db.finish_attempt(&delivery.id, &self.worker_id, result, now).await?;
        tracing::info!(
            delivery_id = %delivery.id,
            event_id = %delivery.event_id,
            attempt = delivery.attempts,
            ok = outcome.is_ok(),
            recorded,
            "webhook attempt"
        );
        Ok(())
    }

    fn next_attempt(&self, attempts: u32, now: DateTime<Utc>) -> DateTime<Utc> {
        let curve = Backoff { base: self.webhooks.backoff, max: self.webhooks.backoff_max };
        now + chrono::Duration::from_std(curve.delay(attempts)).unwrap_or(chrono::Duration::MAX)
    }
}

/// A reqwest error without the URL, which may carry credentials in its query.
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}
