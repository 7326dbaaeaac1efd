//! A claim's lease as its worker sees it. The heartbeat renews it every third of the lease
//! period; the lease is lost when a renewal finds another claim (or none) holding the job, or
//! when no renewal has succeeded within the lease period (the database may be out of reach, and
//! another worker may take the job over at the expiry). Losing it cancels the stage at once,
//! which kills its ffmpeg; every upload checks it first.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Pipeline, StageError};
use crate::model::Job;

/// The lease of one claim.
#[derive(Debug, Clone)]
pub(super) struct Lease {
    lost: CancellationToken,
    /// Until when the last successful renewal (or the claim) holds the job, on this clock.
    valid_until: Arc<Mutex<Instant>>,
}

impl Lease {
    /// A lease just taken (or renewed) at `asked` for `period`.
    fn new(asked: Instant, period: Duration) -> Self {
        Lease { lost: CancellationToken::new(), valid_until: Arc::new(Mutex::new(asked + period)) }
    }

    fn valid_until(&self) -> Instant {
        *self.valid_until.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn renewed(&self, asked: Instant, period: Duration) {
        *self.valid_until.lock().unwrap_or_else(PoisonError::into_inner) = asked + period;
    }

    /// `Err(LeaseLost)` once the lease is lost or lapsed: nothing more may be written.
    pub(super) fn check(&self) -> Result<(), StageError> {
        if self.lost.is_cancelled() || Instant::now() >= self.valid_until() {
            return Err(StageError::LeaseLost);
        }
        Ok(())
    }

    /// Completes when the lease is lost.
    pub(super) async fn lost(&self) {
        self.lost.cancelled().await;
    }
}

impl Pipeline {
    /// The lease of a claim taken at `asked`, with its heartbeat running until the returned
    /// handle is dropped (on every exit path of the stage: return, panic, or the stage future
    /// being dropped at a drain deadline).
    pub(super) fn hold(&self, job: &Job, asked: Instant) -> (Lease, tokio_util::task::AbortOnDropHandle<()>) {
        let lease = Lease::new(asked, self.config.lease);
        let heartbeat = tokio::spawn(self.clone().heartbeat(job.clone(), lease.clone()));
        (lease, tokio_util::task::AbortOnDropHandle::new(heartbeat))
    }

    /// Checks the lease here and in the database, before a write that makes work visible (a
    /// playlist naming new segments).
    pub(super) async fn confirm(&self, job: &Job, lease: &Lease) -> Result<(), StageError> {
        lease.check()?;
        if !self.db.holds_lease(job, Utc::now()).await? {
            lease.lost.cancel();
            return Err(StageError::LeaseLost);
        }
        Ok(())
    }

    async fn heartbeat(self, job: Job, lease: Lease) {
        let period = self.config.lease;
        let every = period / 3;
        let mut next = Instant::now() + every;
        loop {
            let valid_until = lease.valid_until();
            tokio::time::sleep_until(next.min(valid_until)).await;
            if Instant::now() >= valid_until {
                tracing::warn!(job_id = %job.id, "lease not renewed within its period; stopping the job");
                lease.lost.cancel();
                return;
            }
            let asked = Instant::now();
            next = asked + every;
            let now = Utc::now();
            let renewal = self.db.renew_lease(&job, self.lease_until(now), now);
            match tokio::time::timeout_at(valid_until, renewal).await {
                Ok(Ok(true)) => lease.renewed(asked, period),
                Ok(Ok(false)) => {
                    tracing::warn!(job_id = %job.id, "lease lost; stopping the job");
                    lease.lost.cancel();
                    return;
                }
                Ok(Err(err)) => tracing::warn!(job_id = %job.id, error = %err, "lease renewal failed; retrying"),
                Err(_) => {}
            }
        }
    }
}
