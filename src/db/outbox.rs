//! The transactional outbox: events written in the same transaction as the state they announce.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::FromRow;
use uuid::Uuid;

use super::jobs::bind_new_job;
use super::rows::parse_id;
use super::{Db, DbError, with_pool};
use crate::model::{EventType, NewJob, OutboxEvent};

pub(super) const INSERT_EVENT: &str = "INSERT INTO outbox_events (id, event_type, aggregate_id, payload, created_at) \
    VALUES ($1, $2, $3, $4, $5)";

/// Binds an [`OutboxEvent`] to [`INSERT_EVENT`] on either engine.
macro_rules! bind_event {
    ($event:expr) => {
        sqlx::query($crate::db::outbox::INSERT_EVENT)
            .bind($event.id.to_string())
            .bind($event.event_type.as_str())
            .bind(&$event.aggregate_id)
            .bind($event.payload.to_string())
            .bind($event.created_at)
    };
}
pub(super) use bind_event;

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
    /// Inserts an event on its own (tests use it to simulate a duplicate delivery).
    pub async fn insert_event(&self, event: &OutboxEvent) -> Result<(), DbError> {
        with_pool!(self, pool => bind_event!(event).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Unrelayed events of one type, oldest first.
    pub async fn pending_events(&self, event_type: EventType, limit: i64) -> Result<Vec<StoredEvent>, DbError> {
        let sql = "SELECT id, event_type, aggregate_id, payload FROM outbox_events \
                   WHERE event_type = $1 AND published_at IS NULL ORDER BY id LIMIT $2";
        let rows: Vec<EventRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(event_type.as_str()).bind(limit).fetch_all(pool).await?);
        rows.into_iter().map(StoredEvent::try_from).collect()
    }

    /// Relays one event into the queue: enqueues `job` (a no-op if that stage of that generation
    /// exists already, which makes duplicate deliveries harmless) and marks the event relayed,
    /// together.
    pub async fn relay_event(&self, event_id: Uuid, job: &NewJob, now: DateTime<Utc>) -> Result<(), DbError> {
        let mark = "UPDATE outbox_events SET published_at = $2 WHERE id = $1 AND published_at IS NULL";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            bind_new_job!(job, now).execute(&mut *tx).await?;
            sqlx::query(mark).bind(event_id.to_string()).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Events about one aggregate, oldest first.
    pub async fn events_for(&self, aggregate_id: &str) -> Result<Vec<StoredEvent>, DbError> {
        let sql = "SELECT id, event_type, aggregate_id, payload FROM outbox_events WHERE aggregate_id = $1 ORDER BY id";
        let rows: Vec<EventRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(aggregate_id).fetch_all(pool).await?);
        rows.into_iter().map(StoredEvent::try_from).collect()
    }
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = DbError;

    fn try_from(row: EventRow) -> Result<Self, DbError> {
        Ok(StoredEvent {
            id: parse_id(&row.id)?,
            event_type: row.event_type,
            aggregate_id: row.aggregate_id,
            payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
        })
    }
}
