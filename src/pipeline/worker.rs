//! The worker loop: relay, enforce the deadline, claim and run jobs. An idle worker sleeps
//! until it is woken (an upload completed in this process, or a PostgreSQL notification) or the
//! poll interval passes, whichever comes first.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::Pipeline;

/// How often the deadline, retention and queue-depth upkeep runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

/// Runs jobs until `shutdown`. A job in flight at shutdown gets the configured drain time to
/// finish; after that it is dropped (its ffmpeg killed) and its lease lapses, so another worker
/// resumes it.
pub async fn run(pipeline: Pipeline, shutdown: CancellationToken) {
    let mut last_upkeep: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        // Registered before looking for work, so a wake-up during the claim is not lost.
        let woken = pipeline.woken();
        tokio::pin!(woken);
        woken.as_mut().enable();
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
            Ok(reports) => reports.is_empty(),
            Err(err) => {
                tracing::warn!(error = %err, "claiming a job failed");
                true
            }
        };
        if idle {
            tokio::select! {
                () = tokio::time::sleep(pipeline.config().poll_interval) => {}
                () = &mut woken => {}
                () = shutdown.cancelled() => {}
            }
        }
    }
}

/// Forwards PostgreSQL's new-work notifications to this process's idle workers until
/// `shutdown`; reconnects after a lost connection. Returns at once on SQLite.
pub async fn listen(pipeline: Pipeline, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match pipeline.db().listen_for_work().await {
            Ok(None) => return,
            Ok(Some(mut listener)) => loop {
                tokio::select! {
                    received = listener.recv() => match received {
                        Ok(_) => pipeline.wake(),
                        Err(err) => {
                            tracing::warn!(error = %err, "work notifications lost; reconnecting");
                            break;
                        }
                    },
                    () = shutdown.cancelled() => return,
                }
            },
            Err(err) => tracing::warn!(error = %err, "cannot listen for work notifications; polling meanwhile"),
        }
        tokio::select! {
            () = tokio::time::sleep(pipeline.config().poll_interval) => {}
            () = shutdown.cancelled() => {}
        }
    }
}

async fn upkeep(pipeline: &Pipeline) {
    match pipeline.enforce_deadline(Utc::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(videos = n, "processing deadline passed; videos failed"),
        Err(err) => tracing::warn!(error = %err, "deadline check failed"),
    }
    match pipeline.expire_retained(Utc::now()).await {
        Ok(report) if report != Default::default() => {
            tracing::info!(sources = report.sources, generations = report.generations, "retention expired")
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "retention pass failed"),
    }
    if let Err(err) = pipeline.record_queue_depth().await {
        tracing::warn!(error = %err, "queue depth not recorded");
    }
}
