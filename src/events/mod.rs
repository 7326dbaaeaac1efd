//! Events out: every lifecycle event of the transactional outbox, delivered to the outside
//! through signed webhooks and a NATS JetStream stream.
//!
//! - `export.rs` turns each outbox event into its public [`envelope::Envelope`] (frozen on the
//!   event row) and fans it out into one `webhook_deliveries` row per subscribed endpoint, in one
//!   transaction;
//! - `webhook.rs` sends due deliveries, claimed with leases so any number of workers share them,
//!   signed to the Standard Webhooks spec ([`signing`]), retried with backoff;
//! - `stream.rs` publishes exported envelopes to JetStream and marks them only after the ack;
//! - [`endpoints`] is the admin side: registration (behind the SSRF guard of [`target`]),
//!   rotation, retries.

pub mod endpoints;
pub mod envelope;
mod export;
pub mod signing;
mod stream;
pub mod target;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{EventsConfig, WebhooksConfig};
use crate::db::Db;

/// The events service: cheap to clone.
#[derive(Clone)]
pub struct Events {
    db: Db,
    config: Arc<EventsConfig>,
    webhooks: Arc<WebhooksConfig>,
    origin: Arc<str>,
    worker_id: Arc<str>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl Events {
    /// Builds the service; `origin` is the base of playback URLs in event data (the delivery
    /// base URL), `worker_id` names this process in delivery leases.
    pub fn new(db: Db, config: EventsConfig, webhooks: WebhooksConfig, origin: &str, worker_id: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(webhooks.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent(concat!("reel-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Events {
            db,
            config: Arc::new(config),
            webhooks: Arc::new(webhooks),
            origin: origin.trim_end_matches('/').into(),
            worker_id: worker_id.into(),
            http,
        }
    }

    /// The webhook settings.
    pub fn webhooks_config(&self) -> &WebhooksConfig {
        &self.webhooks
    }
}

/// Runs the exporter, the webhook senders and (with `events.nats_url`) the stream publisher
/// until `shutdown` fires.
pub async fn run(events: Events, shutdown: CancellationToken) {
    let mut tasks = JoinSet::new();
    tasks.spawn(export::run(events.clone(), shutdown.clone()));
    for _ in 0..events.webhooks.workers {
        tasks.spawn(webhook::run(events.clone(), shutdown.clone()));
    }
    if let Some(url) = events.config.nats_url.clone() {
        tasks.spawn(stream::run(events.clone(), url, shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// Waits `delay` unless `shutdown` fires first; `false` on shutdown.
async fn idle(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}
