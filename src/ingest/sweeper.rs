//! The background sweeper: expires abandoned upload sessions and frees staged data.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::Ingest;

/// Sweeps every `interval` until `shutdown` fires. Safe to run in many processes at once.
pub async fn run(ingest: Ingest, interval: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match ingest.sweep(Utc::now()).await {
            Ok(report) if report != Default::default() => {
                tracing::info!(
                    expired = report.expired,
                    cleared = report.cleared,
                    failed = report.failed,
                    "upload sweep"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "upload sweep failed; retrying next tick"),
        }
    }
}
