//! The admin side of webhooks: register, change, rotate, remove endpoints; list and retry
//! deliveries.

use chrono::Utc;
use uuid::Uuid;

use super::{Events, signing, target};
use crate::db::{DbError, WebhookDelivery, WebhookEndpoint};
use crate::model::EventType;

/// Why an endpoint operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL is not one reel calls.
    #[error(transparent)]
    Target(#[from] target::TargetError),
    /// An event type that does not exist.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// No such endpoint (or delivery).
    #[error("not found")]
    NotFound,
    /// The delivery is still pending: it will be attempted anyway.
    #[error("the delivery is still pending")]
    StillPending,
    /// Metadata store failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Changes to an endpoint; `None` keeps a field.
#[derive(Debug, Default)]
pub struct EndpointChanges {
    /// New URL.
    pub url: Option<String>,
    /// New event filter (empty: every type).
    pub event_types: Option<Vec<String>>,
    /// New description.
    pub description: Option<String>,
    /// Enable (also clears the failure run) or disable.
    pub enabled: Option<bool>,
}

/// Checks event type names and removes duplicates, keeping the order.
fn event_types(names: Vec<String>) -> Result<Vec<String>, EndpointError> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if EventType::parse_public(&name).is_none() {
            return Err(EndpointError::UnknownEventType(name));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

impl Events {
    /// Registers an endpoint with a fresh secret.
    pub async fn create_endpoint(
        &self,
        url: &str,
        types: Vec<String>,
        description: String,
    ) -> Result<WebhookEndpoint, EndpointError> {
        let url = target::check(url, self.webhooks.allow_private_targets).await?;
        let now = Utc::now();
        let endpoint = WebhookEndpoint {
            id: Uuid::now_v7(),
            url: url.to_string(),
            description,
            event_types: event_types(types)?,
            secret: signing::new_secret(),
            previous_secret: None,
            previous_secret_until: None,
            disabled_at: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        self.db.insert_endpoint(&endpoint).await?;
        Ok(endpoint)
    }

    /// Every endpoint.
    pub async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, EndpointError> {
        Ok(self.db.list_endpoints().await?)
    }

    /// One endpoint.
    pub async fn endpoint(&self, id: Uuid) -> Result<WebhookEndpoint, EndpointError> {
        self.db.get_endpoint(id).await?.ok_or(EndpointError::NotFound)
    }

    /// Applies `changes` to an endpoint.
    pub async fn update_endpoint(&self, id: Uuid, changes: EndpointChanges) -> Result<WebhookEndpoint, EndpointError> {
        let mut endpoint = self.endpoint(id).await?;
        let now = Utc::now();
        if let Some(url) = changes.url {
            endpoint.url = target::check(&url, self.webhooks.allow_private_targets).await?.to_string();
        }
        if let Some(types) = changes.event_types {
            endpoint.event_types = event_types(types)?;
        }
        if let Some(description) = changes.description {
            endpoint.description = description;
        }
        match changes.enabled {
            Some(true) => (endpoint.disabled_at, endpoint.failing_since) = (None, None),
            Some(false) => endpoint.disabled_at = endpoint.disabled_at.or(Some(now)),
            None => {}
        }
        endpoint.updated_at = now;
        if !self.db.update_endpoint(&endpoint).await? {
            return Err(EndpointError::NotFound);
        }
        Ok(endpoint)
    }

    /// Removes an endpoint and its deliveries.
    pub async fn delete_endpoint(&self, id: Uuid) -> Result<(), EndpointError> {
        if self.db.delete_endpoint(id).await? { Ok(()) } else { Err(EndpointError::NotFound) }
    }

    /// Issues a new secret; the old one keeps signing beside it for `webhooks.rotation_overlap`.
    pub async fn rotate_secret(&self, id: Uuid) -> Result<WebhookEndpoint, EndpointError> {
        let now = Utc::now();
        let overlap = chrono::Duration::from_std(self.webhooks.rotation_overlap).unwrap_or_default();
        if !self.db.rotate_secret(id, &signing::new_secret(), now + overlap, now).await? {
            return Err(EndpointError::NotFound);
        }
        self.endpoint(id).await
    }

    /// An endpoint's deliveries, newest first.
    pub async fn deliveries(
        &self,
        id: Uuid,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, EndpointError> {
        self.endpoint(id).await?;
        Ok(self.db.list_deliveries(id, status, limit).await?)
    }

    /// Schedules one more attempt of a finished delivery, now.
    pub async fn retry_delivery(&self, id: Uuid, delivery_id: Uuid) -> Result<WebhookDelivery, EndpointError> {
        let delivery = self.db.get_delivery(id, delivery_id).await?.ok_or(EndpointError::NotFound)?;
        if delivery.status == "pending" || !self.db.retry_delivery(id, delivery_id, Utc::now()).await? {
            return Err(EndpointError::StillPending);
        }
        self.db.get_delivery(id, delivery_id).await?.ok_or(EndpointError::NotFound)
    }
}
