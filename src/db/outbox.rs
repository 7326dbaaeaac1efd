//! The transactional outbox: events written in the same transaction as the state they announce.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::FromRow;
use uuid::Uuid;

use super::jobs::bind_new_job;
use super::rows::parse_id;
use super::webhooks::NewDelivery;
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

/// An event as stored, before its text is parsed.
#[derive(Debug, Clone, FromRow)]
pub struct RawEvent {
    /// Event id (a UUID unless the row is corrupt).
    pub id: String,
    /// Stored event type.
    pub event_type: String,
    /// The entity it is about.
    pub aggregate_id: String,
    /// JSON payload text.
    pub payload: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl RawEvent {
    /// The event with its id, type and payload parsed; the error says what is malformed.
    pub fn parse(&self) -> Result<OutboxEvent, String> {
        let id = self.id.parse().map_err(|_| format!("event id {:?} is not a UUID", self.id))?;
        let event_type =
            EventType::parse(&self.event_type).ok_or_else(|| format!("unknown event type {:?}", self.event_type))?;
        let payload = serde_json::from_str(&self.payload).map_err(|e| format!("payload is not JSON: {e}"))?;
        Ok(OutboxEvent {
            id,
            event_type,
            aggregate_id: self.aggregate_id.clone(),
            payload,
            created_at: self.created_at,
        })
    }
}

/// What exporting an event records.
#[derive(Debug)]
pub struct Export<'a> {
    /// The public envelope, when the event could be exported.
    pub envelope: Option<&'a str>,
    /// Why it could not.
    pub dead_reason: Option<&'a str>,
    /// The webhook deliveries to insert.
    pub deliveries: &'a [NewDelivery],
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

    /// Unrelayed events of one type, oldest first, unparsed so that one malformed row is handled
    /// (dead-lettered) on its own.
    pub async fn pending_events(&self, event_type: EventType, limit: i64) -> Result<Vec<RawEvent>, DbError> {
        let sql = "SELECT id, event_type, aggregate_id, payload, created_at FROM outbox_events \
                   WHERE event_type = $1 AND published_at IS NULL ORDER BY id LIMIT $2";
        Ok(with_pool!(self, pool => sqlx::query_as(sql).bind(event_type.as_str()).bind(limit).fetch_all(pool).await?))
    }

    /// Marks an event the relay cannot use as relayed, with the reason, so it never blocks the
    /// outbox again and stays visible for an operator.
    pub async fn dead_letter_event(&self, event_id: &str, reason: &str, now: DateTime<Utc>) -> Result<(), DbError> {
        let sql = "UPDATE outbox_events SET published_at = $3, dead_reason = $2 WHERE id = $1 AND published_at IS NULL";
        with_pool!(self, pool => sqlx::query(sql).bind(event_id).bind(reason).bind(now).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Events not yet exported to the outside channels, oldest first.
    pub async fn unexported_events(&self, limit: i64) -> Result<Vec<RawEvent>, DbError> {
        let sql = "SELECT id, event_type, aggregate_id, payload, created_at FROM outbox_events \
                   WHERE exported_at IS NULL ORDER BY id LIMIT $1";
        Ok(with_pool!(self, pool => sqlx::query_as(sql).bind(limit).fetch_all(pool).await?))
    }

    /// Exports one event: freezes its `envelope` (or records `dead_reason` when it has none) and
    /// inserts its webhook deliveries, together. `false` when another process exported it first.
    pub async fn export_event(&self, event_id: &str, export: Export<'_>, now: DateTime<Utc>) -> Result<bool, DbError> {
        let mark = "UPDATE outbox_events SET envelope = $2, dead_reason = $3, exported_at = $4 \
                    WHERE id = $1 AND exported_at IS NULL";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let marked = sqlx::query(mark)
                .bind(event_id)
                .bind(export.envelope)
                .bind(export.dead_reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if marked.rows_affected() == 0 {
                return Ok(false);
            }
            for delivery in export.deliveries {
                super::webhooks::bind_delivery!(delivery, now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Exported events not yet acknowledged by the stream, oldest first: `(id, stored type,
    /// envelope)`.
    pub async fn unstreamed_events(&self, limit: i64) -> Result<Vec<(String, String, String)>, DbError> {
        let sql = "SELECT id, event_type, envelope FROM outbox_events \
                   WHERE streamed_at IS NULL AND envelope IS NOT NULL ORDER BY id LIMIT $1";
        Ok(with_pool!(self, pool => sqlx::query_as(sql).bind(limit).fetch_all(pool).await?))
    }

    /// Records the stream's acknowledgement of an event.
    pub async fn mark_streamed(&self, event_id: &str, now: DateTime<Utc>) -> Result<(), DbError> {
        let sql = "UPDATE outbox_events SET streamed_at = $2 WHERE id = $1 AND streamed_at IS NULL";
        with_pool!(self, pool => sqlx::query(sql).bind(event_id).bind(now).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Forgets that an event was streamed (tests use it to force a duplicate publish).
    pub async fn unmark_streamed(&self, event_id: &str) -> Result<(), DbError> {
        let sql = "UPDATE outbox_events SET streamed_at = NULL WHERE id = $1";
        with_pool!(self, pool => sqlx::query(sql).bind(event_id).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Relays one event into the queue: enqueues `job` (a no-op if that stage of that generation
    /// exists already, which makes duplicate deliveries harmless) and marks the event relayed,
    /// together.
    pub async fn relay_event(&self, event_id: &str, job: &NewJob, now: DateTime<Utc>) -> Result<(), DbError> {
        let mark = "UPDATE outbox_events SET published_at = $2 WHERE id = $1 AND published_at IS NULL";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            bind_new_job!(job, now).execute(&mut *tx).await?;
            sqlx::query(mark).bind(event_id).bind(now).execute(&mut *tx).await?;
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
