//! The transactional outbox: events written in the same transaction as the state they announce.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::FromRow;
use uuid::Uuid;

use super::uploads::parse_uuid;
use super::{Db, DbError, with_pool};

/// An event to publish, e.g. `video_upload_completed`.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// Event id (UUIDv7, so ids sort by creation).
    pub id: Uuid,
    /// Event type.
    pub event_type: &'static str,
    /// The entity it is about (a video id).
    pub aggregate_id: String,
    /// JSON payload.
    pub payload: Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

pub(super) const INSERT_EVENT: &str = "INSERT INTO outbox_events (id, event_type, aggregate_id, payload, created_at) \
    VALUES ($1, $2, $3, $4, $5)";

/// An event as stored, for readers of the outbox.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Event id.
    pub id: Uuid,
    /// Event type.
    pub event_type: String,
    /// The entity it is about.
    pub aggregate_id: String,
    /// JSON payload.
    pub payload: Value,
}

#[derive(FromRow)]
struct EventRow {
    id: String,
    event_type: String,
    aggregate_id: String,
    payload: String,
}

impl Db {
    /// Events about one aggregate, oldest first.
    pub async fn events_for(&self, aggregate_id: &str) -> Result<Vec<StoredEvent>, DbError> {
        let sql = "SELECT id, event_type, aggregate_id, payload FROM outbox_events WHERE aggregate_id = $1 ORDER BY id";
        let rows: Vec<EventRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(aggregate_id).fetch_all(pool).await?);
        rows.into_iter()
            .map(|row| {
                Ok(StoredEvent {
                    id: parse_uuid(&row.id)?,
                    event_type: row.event_type,
                    aggregate_id: row.aggregate_id,
                    payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
                })
            })
            .collect()
    }
}
