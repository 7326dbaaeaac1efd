//! Webhook endpoints and their deliveries (`webhook_deliveries`), a queue claimed with leases
//! like the job queue: `FOR UPDATE SKIP LOCKED` on PostgreSQL, serialised writers on SQLite.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::rows::{corrupt, parse_id};
use super::{Db, DbError, with_pool};

/// A registered receiver.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    /// Endpoint id.
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// Free text for operators.
    pub description: String,
    /// Public event types it wants; empty: every type.
    pub event_types: Vec<String>,
    /// The signing secret (`whsec_…`).
    pub secret: String,
    /// The secret replaced by the last rotation, still signing until `previous_secret_until`.
    pub previous_secret: Option<String>,
    /// End of the rotation overlap.
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// When deliveries stopped because it kept failing (or an operator disabled it).
    pub disabled_at: Option<DateTime<Utc>>,
    /// Start of the current run of failures.
    pub failing_since: Option<DateTime<Utc>>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// Whether it wants events of the public type `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.disabled_at.is_none() && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
    }

    /// The secrets that sign a message sent at `now`: the current one, then the previous one
    /// during the rotation overlap.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        match (&self.previous_secret, self.previous_secret_until) {
            (Some(previous), Some(until)) if until > now => secrets.push(previous),
            _ => {}
        }
        secrets
    }
}

#[derive(FromRow)]
struct EndpointRow {
    id: String,
    url: String,
    description: String,
    event_types: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<DateTime<Utc>>,
    disabled_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<EndpointRow> for WebhookEndpoint {
    type Error = DbError;

    fn try_from(row: EndpointRow) -> Result<Self, DbError> {
        Ok(WebhookEndpoint {
            id: parse_id(&row.id)?,
            event_types: serde_json::from_str(&row.event_types)
                .map_err(|_| corrupt("event types", &row.event_types))?,
            url: row.url,
            description: row.description,
            secret: row.secret,
            previous_secret: row.previous_secret,
            previous_secret_until: row.previous_secret_until,
            disabled_at: row.disabled_at,
            failing_since: row.failing_since,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, secret, previous_secret, previous_secret_until, \
    disabled_at, failing_since, created_at, updated_at";

/// A delivery to insert when an event is exported.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Delivery id.
    pub id: Uuid,
    /// The receiving endpoint.
    pub endpoint_id: Uuid,
    /// The event (the `webhook-id`).
    pub event_id: Uuid,
    /// Public event type.
    pub event_type: &'static str,
    /// The envelope, sent as is on every attempt.
    pub body: String,
}

pub(super) const INSERT_DELIVERY: &str = "INSERT INTO webhook_deliveries \
    (id, endpoint_id, event_id, event_type, body, status, attempts, next_attempt_at, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6) ON CONFLICT (endpoint_id, event_id) DO NOTHING";

/// Binds a [`NewDelivery`] to [`INSERT_DELIVERY`] on either engine.
macro_rules! bind_delivery {
    ($delivery:expr, $now:expr) => {
        sqlx::query($crate::db::webhooks::INSERT_DELIVERY)
            .bind($delivery.id.to_string())
            .bind($delivery.endpoint_id.to_string())
            .bind($delivery.event_id.to_string())
            .bind($delivery.event_type)
            .bind(&$delivery.body)
            .bind($now)
    };
}
pub(super) use bind_delivery;

/// A delivery as stored.
#[derive(Debug, Clone, FromRow)]
pub struct WebhookDelivery {
    /// Delivery id.
    pub id: String,
    /// The receiving endpoint.
    pub endpoint_id: String,
    /// The event id, sent as `webhook-id`.
    pub event_id: String,
    /// Public event type.
    pub event_type: String,
    /// The envelope.
    pub body: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts started so far.
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: DateTime<Utc>,
    /// HTTP status of the last answer.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When a 2xx arrived.
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, body, status, attempts, next_attempt_at, \
    last_status, last_error, created_at, delivered_at";

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum AttemptResult<'a> {
    /// A 2xx answer.
    Delivered { status: i64 },
    /// A failure with another attempt due at `next_at`.
    Retry { status: Option<i64>, error: &'a str, next_at: DateTime<Utc> },
    /// A failure after the last attempt (or to a disabled endpoint).
    Failed { status: Option<i64>, error: &'a str },
}

fn claim_sql(skip_locked: bool) -> String {
    let lock = if skip_locked { "FOR UPDATE SKIP LOCKED" } else { "" };
    let due = "status = 'pending' AND next_attempt_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at < $3)";
    format!(
        "UPDATE webhook_deliveries SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, updated_at = $3 \
         WHERE id IN (SELECT id FROM webhook_deliveries WHERE {due} ORDER BY next_attempt_at, id LIMIT $4 {lock}) \
         AND {due} RETURNING {DELIVERY_COLUMNS}"
    )
}

impl Db {
    /// Registers an endpoint.
    pub async fn insert_endpoint(&self, e: &WebhookEndpoint) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let types = serde_json::Value::from(e.event_types.clone()).to_string();
        with_pool!(self, pool => sqlx::query(&sql)
            .bind(e.id.to_string())
            .bind(&e.url)
            .bind(&e.description)
            .bind(types)
            .bind(&e.secret)
            .bind(&e.previous_secret)
            .bind(e.previous_secret_until)
            .bind(e.disabled_at)
            .bind(e.failing_since)
            .bind(e.created_at)
            .bind(e.updated_at)
            .execute(pool)
            .await?.rows_affected());
        Ok(())
    }

    /// Every endpoint, oldest first.
    pub async fn list_endpoints(&self) -> Result<Vec<WebhookEndpoint>, DbError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id");
        let rows: Vec<EndpointRow> = with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(WebhookEndpoint::try_from).collect()
    }

    /// One endpoint.
    pub async fn get_endpoint(&self, id: Uuid) -> Result<Option<WebhookEndpoint>, DbError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        let row: Option<EndpointRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(id.to_string()).fetch_optional(pool).await?);
        row.map(WebhookEndpoint::try_from).transpose()
    }

    /// Stores an endpoint's editable fields (url, description, types, disabled, failing).
    pub async fn update_endpoint(&self, e: &WebhookEndpoint) -> Result<bool, DbError> {
        let sql = "UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, disabled_at = $5, \
                   failing_since = $6, updated_at = $7 WHERE id = $1";
        let types = serde_json::Value::from(e.event_types.clone()).to_string();
        let done = with_pool!(self, pool => sqlx::query(sql)
            .bind(e.id.to_string())
            .bind(&e.url)
            .bind(&e.description)
            .bind(types)
            .bind(e.disabled_at)
            .bind(e.failing_since)
            .bind(e.updated_at)
            .execute(pool)
            .await?.rows_affected());
        Ok(done == 1)
    }

    /// Makes `secret` the signing secret; the old one keeps signing until `overlap_until`.
    pub async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &str,
        overlap_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE webhook_endpoints SET previous_secret = secret, secret = $2, previous_secret_until = $3, \
                   updated_at = $4 WHERE id = $1";
        let done = with_pool!(self, pool => sqlx::query(sql)
            .bind(id.to_string())
            .bind(secret)
            .bind(overlap_until)
            .bind(now)
            .execute(pool)
            .await?.rows_affected());
        Ok(done == 1)
    }

    /// Removes an endpoint and its deliveries.
    pub async fn delete_endpoint(&self, id: Uuid) -> Result<bool, DbError> {
        let done = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
            tx.commit().await?;
            done.rows_affected()
        });
        Ok(done == 1)
    }

    /// Records a success: the endpoint is healthy again.
    pub async fn endpoint_succeeded(&self, id: &str, now: DateTime<Utc>) -> Result<(), DbError> {
        let sql = "UPDATE webhook_endpoints SET failing_since = NULL, updated_at = $2 \
                   WHERE id = $1 AND failing_since IS NOT NULL";
        with_pool!(self, pool => sqlx::query(sql).bind(id).bind(now).execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Records a failure; disables the endpoint when it has been failing since before
    /// `disable_before`. Returns `true` when this call disabled it.
    pub async fn endpoint_failed(
        &self,
        id: &str,
        now: DateTime<Utc>,
        disable_before: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let start =
            "UPDATE webhook_endpoints SET failing_since = $2, updated_at = $2 WHERE id = $1 AND failing_since IS NULL";
        let disable = "UPDATE webhook_endpoints SET disabled_at = $2, updated_at = $2 \
                       WHERE id = $1 AND disabled_at IS NULL AND failing_since < $3";
        let disabled = with_pool!(self, pool => {
            sqlx::query(start).bind(id).bind(now).execute(pool).await?;
            sqlx::query(disable).bind(id).bind(now).bind(disable_before).execute(pool).await?.rows_affected()
        });
        Ok(disabled == 1)
    }

    /// Claims up to `limit` due deliveries for `owner` until `lease_until`, counting an attempt
    /// for each.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, DbError> {
        let rows = match self {
            Db::Sqlite(pool) => {
                sqlx::query_as(&claim_sql(false))
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as(&claim_sql(true))
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows)
    }

    /// Records how an attempt ended, if `owner` still holds the delivery's lease.
    pub async fn finish_attempt(
        &self,
        delivery_id: &str,
        owner: &str,
        result: AttemptResult<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let (status, code, error, next_at, delivered_at) = match result {
            AttemptResult::Delivered { status } => ("delivered", Some(status), None, now, Some(now)),
            AttemptResult::Retry { status, error, next_at } => ("pending", status, Some(error), next_at, None),
            AttemptResult::Failed { status, error } => ("failed", status, Some(error), now, None),
        };
        let sql = "UPDATE webhook_deliveries SET status = $3, last_status = $4, last_error = $5, next_attempt_at = $6, \
                   delivered_at = $7, lease_owner = NULL, lease_expires_at = NULL, updated_at = $8 \
                   WHERE id = $1 AND lease_owner = $2 AND status = 'pending'";
        let done = with_pool!(self, pool => sqlx::query(sql)
            .bind(delivery_id)
            .bind(owner)
            .bind(status)
            .bind(code)
            .bind(error)
            .bind(next_at)
            .bind(delivered_at)
            .bind(now)
            .execute(pool)
            .await?.rows_affected());
        Ok(done == 1)
    }

    /// An endpoint's deliveries, newest first, optionally of one status.
    pub async fn list_deliveries(
        &self,
        endpoint_id: Uuid,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, DbError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 AND (CAST($2 AS TEXT) IS NULL OR status = $2) \
             ORDER BY id DESC LIMIT $3"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(endpoint_id.to_string())
            .bind(status)
            .bind(limit)
            .fetch_all(pool)
            .await?))
    }

    /// One delivery of an endpoint.
    pub async fn get_delivery(&self, endpoint_id: Uuid, delivery_id: Uuid) -> Result<Option<WebhookDelivery>, DbError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 AND id = $2");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(endpoint_id.to_string())
            .bind(delivery_id.to_string())
            .fetch_optional(pool)
            .await?))
    }

    /// Schedules one more attempt of a finished (failed or delivered) delivery now. `false` if
    /// it is still pending or does not exist.
    pub async fn retry_delivery(
        &self,
        endpoint_id: Uuid,
        delivery_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3, lease_owner = NULL, \
                   lease_expires_at = NULL, updated_at = $3 WHERE endpoint_id = $1 AND id = $2 AND status <> 'pending'";
        let done = with_pool!(self, pool => sqlx::query(sql)
            .bind(endpoint_id.to_string())
            .bind(delivery_id.to_string())
            .bind(now)
            .execute(pool)
            .await?.rows_affected());
        Ok(done == 1)
    }
}
