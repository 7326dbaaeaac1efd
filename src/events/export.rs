//! The fan-out: each outbox event gets its envelope and one delivery per subscribed endpoint,
//! in the transaction that marks it exported. An event that can never be exported is marked
//! with its `dead_reason` instead, so it blocks nothing.

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Events, envelope, idle};
use crate::db::{DbError, Export, NewDelivery};

/// Events exported per pass.
const BATCH: i64 = 100;

/// Exports until `shutdown`; idles `events.poll_interval` when nothing is pending.
pub(super) async fn run(events: Events, shutdown: CancellationToken) {
    loop {
        let pause = match events.export().await {
            Ok(0) => events.config.poll_interval,
            Ok(_) => std::time::Duration::ZERO,
            Err(err) => {
                tracing::warn!(error = %err, "event export failed; retrying");
                events.config.poll_interval
            }
        };
        if !idle(pause, &shutdown).await {
            return;
        }
    }
}

impl Events {
    /// Exports pending outbox events; returns how many were handled.
    pub async fn export(&self) -> Result<usize, DbError> {
        let pending = self.db.unexported_events(BATCH).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let endpoints = self.db.list_endpoints().await?;
        for raw in &pending {
            let now = Utc::now();
            let exported = match envelope::build(&self.db, &self.origin, raw).await {
                Err(err) => {
                    tracing::warn!(event_id = %raw.id, error = %err, "event not exported; retrying next pass");
                    continue;
                }
                Ok(Err(reason)) => {
                    tracing::warn!(event_id = %raw.id, reason, "outbox event cannot be exported; dead-lettered");
                    let export = Export { envelope: None, dead_reason: Some(&reason), deliveries: &[] };
                    self.db.export_event(&raw.id, export, now).await?
                }
                Ok(Ok(envelope)) => {
                    let body = serde_json::to_string(&envelope).unwrap_or_default();
                    let deliveries: Vec<NewDelivery> = endpoints
                        .iter()
                        .filter(|e| e.wants(envelope.event_type))
                        .map(|e| NewDelivery {
                            id: Uuid::now_v7(),
                            endpoint_id: e.id,
                            event_id: envelope.id,
                            event_type: envelope.event_type,
                            body: body.clone(),
                        })
                        .collect();
                    let export = Export { envelope: Some(&body), dead_reason: None, deliveries: &deliveries };
                    self.db.export_event(&raw.id, export, now).await?
                }
            };
            if exported {
                tracing::debug!(event_id = %raw.id, "event exported");
            }
        }
        Ok(pending.len())
    }
}
