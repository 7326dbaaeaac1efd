//! The state every handler shares: the services and backends, cheap to clone.

use axum::extract::FromRef;

use crate::api::auth::Authenticator;
use crate::db::Db;
use crate::delivery::Delivery;
use crate::events::Events;
use crate::ingest::Ingest;
use crate::pipeline::Pipeline;
use crate::storage::Storage;

/// State shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Metadata store.
    pub db: Db,
    /// Object store.
    pub storage: Storage,
    /// Upload service.
    pub ingest: Ingest,
    /// Processing pipeline.
    pub pipeline: Pipeline,
    /// Playback, feed and origin.
    pub delivery: Delivery,
    /// Token verifier.
    pub auth: Authenticator,
    /// The last `/readyz` answer.
    pub readiness: crate::api::health::ReadinessCache,
    /// Events out: webhooks and the NATS sink.
    pub events: Events,
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}
