//! Webhook endpoints (`/v1/ops/webhooks`, admin only): register, list, change, remove, rotate
//! the signing secret; list an endpoint's deliveries and retry one.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{ApiPath, ApiQuery};
use super::json::ApiJson;
use super::openapi::{AdminOnly, BadRequest, Conflict, JsonBody, NotFound, Unprocessable};
use super::ops::Admin;
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::db::{WebhookDelivery, WebhookEndpoint};
use crate::events::endpoints::{EndpointChanges, EndpointError};

/// A public event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WebhookEventType {
    /// An upload completed.
    #[serde(rename = "upload.completed")]
    UploadCompleted,
    /// An upload session expired.
    #[serde(rename = "upload.expired")]
    UploadExpired,
    /// The start rungs are playable by the creator.
    #[serde(rename = "video.playable")]
    VideoPlayable,
    /// The video is ready.
    #[serde(rename = "video.ready")]
    VideoReady,
    /// The whole ladder is published.
    #[serde(rename = "video.ladder_completed")]
    VideoLadderCompleted,
    /// Processing failed.
    #[serde(rename = "video.failed")]
    VideoFailed,
    /// An operator asked for a reprocess.
    #[serde(rename = "video.reprocess_requested")]
    VideoReprocessRequested,
}

impl WebhookEventType {
    fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

fn names(types: Vec<WebhookEventType>) -> Vec<String> {
    types.into_iter().map(WebhookEventType::name).collect()
}

/// Body of `POST /v1/ops/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: an `http(s)` URL on a public address.
    #[schema(min_length = 1, max_length = 2048)]
    url: String,
    /// Event types to send; omitted or empty: every type.
    #[schema(max_items = 7)]
    events: Option<Vec<WebhookEventType>>,
    /// Free text for operators.
    #[schema(max_length = 500)]
    description: Option<String>,
}

/// Body of `PATCH /v1/ops/webhooks/{id}`: every field optional.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// New URL.
    #[schema(min_length = 1, max_length = 2048)]
    url: Option<String>,
    /// New event filter (empty: every type).
    #[schema(max_items = 7)]
    events: Option<Vec<WebhookEventType>>,
    /// New description.
    #[schema(max_length = 500)]
    description: Option<String>,
    /// `true` re-enables a disabled endpoint; `false` stops deliveries to it.
    enabled: Option<bool>,
}

/// A webhook endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    id: Uuid,
    url: String,
    /// Event types sent; empty: every type.
    events: Vec<String>,
    description: String,
    /// `enabled`, or `disabled` (by an operator, or after failing for `webhooks.disable_after`).
    status: &'static str,
    disabled_at: Option<DateTime<Utc>>,
    /// Start of the current run of failed attempts.
    failing_since: Option<DateTime<Utc>>,
    /// Until when the previous secret still signs beside the current one.
    previous_secret_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The signing secret (`whsec_…`): only in the answers to create and rotate-secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl Webhook {
    fn from(endpoint: WebhookEndpoint, with_secret: bool) -> Self {
        let now = Utc::now();
        Webhook {
            id: endpoint.id,
            status: if endpoint.disabled_at.is_some() { "disabled" } else { "enabled" },
            previous_secret_expires_at: endpoint.previous_secret_until.filter(|until| *until > now),
            secret: with_secret.then_some(endpoint.secret),
            url: endpoint.url,
            events: endpoint.event_types,
            description: endpoint.description,
            disabled_at: endpoint.disabled_at,
            failing_since: endpoint.failing_since,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// The endpoint list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Webhooks {
    webhooks: Vec<Webhook>,
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    id: String,
    webhook_id: String,
    /// The event id, sent as `webhook-id`.
    event_id: String,
    event_type: String,
    /// `pending`, `delivered` or `failed`.
    status: String,
    /// Attempts made (or started).
    attempts: i64,
    /// When a pending delivery is next attempted.
    next_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last answer.
    last_status: Option<i64>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<WebhookDelivery> for Delivery {
    fn from(d: WebhookDelivery) -> Self {
        Delivery {
            next_attempt_at: (d.status == "pending").then_some(d.next_attempt_at),
            id: d.id,
            webhook_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// The delivery list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deliveries {
    deliveries: Vec<Delivery>,
}

/// Query of the delivery list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only deliveries in this state.
    #[param(pattern = "^(pending|delivered|failed)$")]
    status: Option<String>,
    /// Most deliveries to list, newest first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

impl From<EndpointError> for ApiError {
    fn from(err: EndpointError) -> Self {
        let message = err.to_string();
        match err {
            EndpointError::Target(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_webhook_url", message),
            EndpointError::UnknownEventType(_) => ApiError::bad_request("invalid_event_type", message),
            EndpointError::NotFound => ApiError::not_found("webhook"),
            EndpointError::StillPending => ApiError::new(StatusCode::CONFLICT, "delivery_pending", message),
            EndpointError::Db(db) => db.into(),
        }
    }
}

/// Enforces the documented bounds of a create or update body.
fn check_bounds(
    url: Option<&str>,
    events: Option<&[WebhookEventType]>,
    description: Option<&str>,
) -> Result<(), ApiError> {
    if url.is_some_and(|u| u.is_empty() || u.chars().count() > 2048) {
        return Err(ApiError::bad_request("invalid_url", "url must be 1 to 2048 characters"));
    }
    if events.is_some_and(|e| e.len() > 7) {
        return Err(ApiError::bad_request("invalid_event_type", "events lists at most 7 types"));
    }
    if description.is_some_and(|d| d.chars().count() > 500) {
        return Err(ApiError::bad_request("invalid_description", "description is at most 500 characters"));
    }
    Ok(())
}

fn webhook_id(raw: &str) -> Result<Uuid, ApiError> {
    super::path_id(raw, "webhook")
}

/// `POST /v1/ops/webhooks`: registers an endpoint; the answer carries its secret, once.
#[utoipa::path(
    post,
    path = "/v1/ops/webhooks",
    operation_id = "create_webhook",
    tag = "ops",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "registered; `secret` is shown only here", body = Webhook, links(
            ("get_webhook" = (operation_id = "get_webhook", parameters(("id" = "$response.body#/id")))),
        )),
        JsonBody, AdminOnly, Unprocessable,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<Webhook>), ApiError> {
    check_bounds(Some(&body.url), body.events.as_deref(), body.description.as_deref())?;
    let types = names(body.events.unwrap_or_default());
    let endpoint = state.events.create_endpoint(&body.url, types, body.description.unwrap_or_default()).await?;
    Ok((StatusCode::CREATED, Json(Webhook::from(endpoint, true))))
}

/// `GET /v1/ops/webhooks`: every endpoint, oldest first.
#[utoipa::path(
    get,
    path = "/v1/ops/webhooks",
    operation_id = "list_webhooks",
    tag = "ops",
    responses((status = 200, description = "the endpoints", body = Webhooks), AdminOnly),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn list(State(state): State<AppState>, admin: Admin) -> Result<Json<Webhooks>, ApiError> {
    let webhooks = state.events.endpoints().await?.into_iter().map(|e| Webhook::from(e, false)).collect();
    Ok(Json(Webhooks { webhooks }))
}

/// `GET /v1/ops/webhooks/{id}`: one endpoint.
#[utoipa::path(
    get,
    path = "/v1/ops/webhooks/{id}",
    operation_id = "get_webhook",
    tag = "ops",
    params(("id" = Uuid, Path, description = "webhook id")),
    responses((status = 200, description = "the endpoint", body = Webhook), AdminOnly, NotFound),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(Webhook::from(state.events.endpoint(webhook_id(&id)?).await?, false)))
}

/// `PATCH /v1/ops/webhooks/{id}`: changes the URL, filter, description or enabled state.
#[utoipa::path(
    patch,
    path = "/v1/ops/webhooks/{id}",
    operation_id = "update_webhook",
    tag = "ops",
    params(("id" = Uuid, Path, description = "webhook id")),
    request_body = UpdateWebhook,
    responses((status = 200, description = "the changed endpoint", body = Webhook), JsonBody, AdminOnly, NotFound, Unprocessable),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> Result<Json<Webhook>, ApiError> {
    let id = webhook_id(&id)?;
    check_bounds(body.url.as_deref(), body.events.as_deref(), body.description.as_deref())?;
    let changes = EndpointChanges {
        url: body.url,
        event_types: body.events.map(names),
        description: body.description,
        enabled: body.enabled,
    };
    Ok(Json(Webhook::from(state.events.update_endpoint(id, changes).await?, false)))
}

/// `DELETE /v1/ops/webhooks/{id}`: removes an endpoint and its deliveries.
#[utoipa::path(
    delete,
    path = "/v1/ops/webhooks/{id}",
    operation_id = "delete_webhook",
    tag = "ops",
    params(("id" = Uuid, Path, description = "webhook id")),
    responses((status = 204, description = "removed"), AdminOnly, NotFound),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.events.delete_endpoint(webhook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/ops/webhooks/{id}/rotate-secret`: a new secret, shown once; the old one keeps
/// signing beside it (two signatures per message) for `webhooks.rotation_overlap` (24 h).
#[utoipa::path(
    post,
    path = "/v1/ops/webhooks/{id}/rotate-secret",
    operation_id = "rotate_webhook_secret",
    tag = "ops",
    params(("id" = Uuid, Path, description = "webhook id")),
    responses((status = 200, description = "the endpoint with its new `secret`", body = Webhook), AdminOnly, NotFound),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(Webhook::from(state.events.rotate_secret(webhook_id(&id)?).await?, true)))
}

/// `GET /v1/ops/webhooks/{id}/deliveries`: the endpoint's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/v1/ops/webhooks/{id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "ops",
    params(("id" = Uuid, Path, description = "webhook id"), DeliveriesQuery),
    responses((status = 200, description = "the deliveries", body = Deliveries), BadRequest, AdminOnly, NotFound),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn deliveries(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Deliveries>, ApiError> {
    let id = webhook_id(&id)?;
    if query.status.as_deref().is_some_and(|s| !matches!(s, "pending" | "delivered" | "failed")) {
        return Err(ApiError::bad_request("invalid_status", "status must be pending, delivered or failed"));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be 1 to 1000"));
    }
    let rows = state.events.deliveries(id, query.status.as_deref(), limit).await?;
    Ok(Json(Deliveries { deliveries: rows.into_iter().map(Delivery::from).collect() }))
}

/// `POST /v1/ops/webhooks/{id}/deliveries/{delivery_id}/retry`: one more attempt of a failed
/// (or delivered) delivery, now.
#[utoipa::path(
    post,
    path = "/v1/ops/webhooks/{id}/deliveries/{delivery_id}/retry",
    operation_id = "retry_webhook_delivery",
    tag = "ops",
    params(
        ("id" = Uuid, Path, description = "webhook id"),
        ("delivery_id" = Uuid, Path, description = "delivery id"),
    ),
    responses((status = 202, description = "scheduled", body = Delivery), AdminOnly, NotFound, Conflict),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(admin = %admin.0.id), err(Debug))]
pub async fn retry(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath((id, delivery_id)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let id = webhook_id(&id)?;
    let delivery_id = super::path_id(&delivery_id, "delivery")?;
    let delivery = state.events.retry_delivery(id, delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(Delivery::from(delivery))))
}
