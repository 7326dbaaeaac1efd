//! The NATS JetStream sink: every exported envelope is published to
//! `{subject_prefix}.{type}` with `Nats-Msg-Id` = the event id, so JetStream's duplicate window
//! drops a republished event, and the event is marked streamed only after JetStream's ack. While
//! NATS is down nothing is marked, so an outage delays events and loses none.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{Events, idle};
use crate::backoff::Backoff;

/// Envelopes published per pass.
const BATCH: i64 = 100;
/// How long JetStream remembers message ids to drop duplicates.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Retry curve while NATS or the stream is unavailable.
const RETRY: Backoff = Backoff { base: Duration::from_millis(200), max: Duration::from_secs(10) };

/// Publishes until `shutdown`.
pub(super) async fn run(events: Events, url: String, shutdown: CancellationToken) {
    let client = loop {
        let options =
            async_nats::ConnectOptions::new().retry_on_initial_connect().connection_timeout(Duration::from_secs(5));
        match options.connect(url.as_str()).await {
            Ok(client) => break client,
            Err(err) => {
                tracing::warn!(error = %err, "cannot reach NATS; retrying");
                if !idle(RETRY.max, &shutdown).await {
                    return;
                }
            }
        }
    };
    let context = jetstream::new(client);
    let mut failures = 0u32;
    let mut stream_ready = false;
    loop {
        let pass = match stream_ready {
            true => events.publish_pending(&context).await,
            false => match events.ensure_stream(&context).await {
                Ok(()) => {
                    stream_ready = true;
                    events.publish_pending(&context).await
                }
                Err(err) => Err(err),
            },
        };
        let pause = match pass {
            Ok(0) => {
                failures = 0;
                events.config.poll_interval
            }
            Ok(_) => {
                failures = 0;
                Duration::ZERO
            }
            Err(err) => {
                failures += 1;
                stream_ready = false;
                tracing::warn!(error = %err, failures, "publishing events to NATS failed; retrying");
                RETRY.delay(failures)
            }
        };
        if !idle(pause, &shutdown).await {
            return;
        }
    }
}

impl Events {
    /// Creates the stream when it is missing (an existing one is used as it is).
    async fn ensure_stream(&self, context: &jetstream::Context) -> anyhow::Result<()> {
        let config = stream::Config {
            name: self.config.nats_stream.clone(),
            subjects: vec![format!("{}.>", self.config.nats_subject_prefix)],
            max_age: self.config.nats_max_age,
            duplicate_window: DUPLICATE_WINDOW.min(self.config.nats_max_age),
            storage: stream::StorageType::File,
            ..Default::default()
        };
        context.get_or_create_stream(config).await?;
        Ok(())
    }

    /// Publishes exported, unstreamed envelopes in order; returns how many were acknowledged.
    async fn publish_pending(&self, context: &jetstream::Context) -> anyhow::Result<usize> {
        let pending = self.db.unstreamed_events(BATCH).await?;
        for (id, stored_type, envelope) in &pending {
            let public = crate::model::EventType::parse(stored_type).map_or(stored_type.as_str(), |t| t.public_name());
            let subject = format!("{}.{public}", self.config.nats_subject_prefix);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
            let ack = context.publish_with_headers(subject, headers, envelope.clone().into()).await?.await?;
            self.db.mark_streamed(id, Utc::now()).await?;
            tracing::debug!(event_id = %id, duplicate = ack.duplicate, sequence = ack.sequence, "event streamed");
        }
        Ok(pending.len())
    }
}
