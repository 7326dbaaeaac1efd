//! The worker loop: relay, enforce the deadline, claim and run jobs; poll when idle.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::Pipeline;

/// How often the deadline and queue-depth upkeep runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

/// Runs jobs until `shutdown`. A job in flight at shutdown gets the configured drain time to
/// finish; after that it is dropped (its ffmpeg killed) and its lease lapses, so another worker
/// resumes it.
pub async fn run(pipeline: Pipeline, shutdown: CancellationToken) {
    let mut last_upkeep: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        if last_upkeep.is_none_or(|at| at.elapsed() >= UPKEEP_EVERY) {
            upkeep(&pipeline).await;
            last_upkeep = Some(Instant::now());
        }
        if let Err(err) = pipeline.relay(Utc::now()).await {
            tracing::warn!(error = %err, "outbox relay failed");
        }
        let work = pipeline.run_next();
        tokio::pin!(work);
        let ran = tokio::select! {
            result = &mut work => result,
            () = shutdown.cancelled() => {
                match tokio::time::timeout(pipeline.config().drain_timeout, work).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!("drain deadline passed; the interrupted job will be resumed elsewhere");
                        return;
                    }
                }
            }
        };
        let idle = match ran {
            Ok(Some(_)) => false,
            Ok(None) => true,
            Err(err) => {
                tracing::warn!(error = %err, "claiming a job failed");
                true
            }
        };
        if idle {
            tokio::select! {
                () = tokio::time::sleep(pipeline.config().poll_interval) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }
}

async fn upkeep(pipeline: &Pipeline) {
    match pipeline.enforce_deadline(Utc::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(videos = n, "processing deadline passed; videos failed"),
        Err(err) => tracing::warn!(error = %err, "deadline check failed"),
    }
    if let Err(err) = pipeline.record_queue_depth().await {
        tracing::warn!(error = %err, "queue depth not recorded");
    }
}
