//! The OpenAPI document: everything comes from the handlers' annotations, plus the shared error
//! answers, the limits that come from configuration and `/openapi.json` itself.
//!
//! A handler documents its errors by listing the shared sets below after its success answers,
//! e.g. `responses((status = 200, body = X), Authenticated, JsonBody, NotFound)`. Each set refers
//! to one reusable response under `components/responses`, all with the [`ErrorBody`] schema.

use std::collections::BTreeMap;

use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Header, Object, Ref, RefOr, Schema, Type};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::api::error::ErrorBody;
use crate::config::Config;

/// The document's root.
#[derive(OpenApi)]
#[openapi(
    info(title = "reel", description = "Video ingest and delivery: resumable uploads, an HLS/CMAF pipeline, playback and an origin."),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth, &ErrorResponses),
    tags(
        (name = "uploads", description = "Upload sessions and parts"),
        (name = "playback", description = "Playback status, feed and beacon"),
        (name = "ops", description = "Operations (admin tokens)"),
        (name = "origin", description = "Packaged HLS for players and CDNs"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// One shared error answer: its status, component name, description, and whether it carries
/// `Retry-After`.
struct Shared {
    status: u16,
    name: &'static str,
    description: &'static str,
    retry_after: bool,
}

const SHARED: [Shared; 11] = [
    Shared {
        status: 400,
        name: "BadRequest",
        description: "Malformed request: unparsable JSON, query or path, or a value outside the documented constraints. `error.code` says which (e.g. `invalid_json`, `invalid_query`, `invalid_filename`).",
        retry_after: false,
    },
    Shared {
        status: 401,
        name: "Unauthorized",
        description: "Missing, malformed or expired bearer token.",
        retry_after: false,
    },
    Shared {
        status: 403,
        name: "Forbidden",
        description: "The token is valid but lacks the role this operation needs.",
        retry_after: false,
    },
    Shared {
        status: 404,
        name: "NotFound",
        description: "No such resource, or one the caller may not see (the two are indistinguishable).",
        retry_after: false,
    },
    Shared {
        status: 409,
        name: "Conflict",
        description: "The request conflicts with the resource's current state; `error.code` says how (e.g. `upload_not_open`, `missing_parts`) and `error.details` carries the state.",
        retry_after: false,
    },
    Shared {
        status: 413,
        name: "PayloadTooLarge",
        description: "The request body exceeds the server's limit.",
        retry_after: false,
    },
    Shared {
        status: 415,
        name: "UnsupportedMediaType",
        description: "The body's `Content-Type` is not the documented one (`application/json`).",
        retry_after: false,
    },
    Shared {
        status: 422,
        name: "UnprocessableContent",
        description: "Well-formed, but the content does not match what it declares (e.g. `checksum_mismatch`, `part_not_verified`).",
        retry_after: false,
    },
    Shared {
        status: 429,
        name: "TooManyRequests",
        description: "Rate or per-user quota exceeded (`error.code` `quota_exceeded`, `error.details` `{quota, limit, used}`); retry after `Retry-After` seconds.",
        retry_after: true,
    },
    Shared {
        status: 507,
        name: "InsufficientStorage",
        description: "Out of storage: either the caller's quota of bytes reserved by open upload sessions is used up (`quota_exceeded`, `error.details` `{quota, limit, used}`, `Retry-After` when the earliest open session expires), or the object store is out of space (`insufficient_storage`; retrying will not help until space is freed).",
        retry_after: true,
    },
    Shared {
        status: 503,
        name: "ServiceUnavailable",
        description: "A dependency (database, object store) is unavailable; retry after `Retry-After` seconds.",
        retry_after: true,
    },
];

struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for shared in &SHARED {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
            let mut response =
                ResponseBuilder::new().description(shared.description).content("application/json", content);
            if shared.retry_after {
                let seconds = Object::builder().schema_type(Type::Integer).minimum(Some(1)).build();
                let mut header = Header::new(Schema::Object(seconds));
                header.description = Some("Seconds to wait before retrying".into());
                response = response.header("retry-after", header);
            }
            components.responses.insert(shared.name.into(), RefOr::T(response.build()));
        }
    }
}

fn refs(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    SHARED
        .iter()
        .filter(|shared| statuses.contains(&shared.status))
        .map(|shared| (shared.status.to_string(), RefOr::Ref(Ref::from_response_name(shared.name))))
        .collect()
}

macro_rules! error_set {
    ($($(#[$doc:meta])* $name:ident => [$($status:literal),+];)+) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    refs(&[$($status),+])
                }
            }
        )+
    };
}

error_set! {
    /// Every operation behind a bearer token that reads the database: 401 and 503.
    Authenticated => [401, 503];
    /// Admin-only operations: 401, 403 and 503.
    AdminOnly => [401, 403, 503];
    /// Operations with a JSON body: 400 (unparsable or invalid), 413 and 415.
    JsonBody => [400, 413, 415];
    /// 400: an invalid query, path or value.
    BadRequest => [400];
    /// 404: unknown or not visible to the caller.
    NotFound => [404];
    /// 403: a credential that does not open this resource (e.g. a playback token).
    Forbidden => [403];
    /// 409: conflicts with the resource's state.
    Conflict => [409];
    /// 422: content that does not match its declaration.
    Unprocessable => [422];
    /// 429: rate or quota exceeded, with `Retry-After`.
    TooManyRequests => [429];
    /// 429 or 507: a per-user quota of sessions or reserved bytes is used up.
    Quota => [429, 507];
    /// 503 without authentication (public operations that read the database or store).
    Unavailable => [503];
    /// 507: operations that write to the object store, which may be out of space.
    InsufficientStorage => [507];
    /// 429 or 507: a per-user completion quota, or an object store out of space.
    QuotaOrFull => [429, 507];
}

/// Completes the generated document: `/openapi.json` itself and the limits that come from
/// configuration (`size_bytes` of a new upload).
pub fn complete(mut spec: utoipa::openapi::OpenApi, config: &Config) -> utoipa::openapi::OpenApi {
    let document = OperationBuilder::new()
        .tag("operations")
        .summary(Some("This document"))
        .operation_id(Some("openapi"))
        .response(
            "200",
            ResponseBuilder::new()
                .description("OpenAPI 3.1 JSON")
                .content("application/json", ContentBuilder::new().build()),
        )
        .build();
    spec.paths.paths.insert("/openapi.json".into(), PathItem::new(HttpMethod::Get, document));
    set_property_maximum(&mut spec, "CreateUpload", "size_bytes", config.uploads.max_size_bytes);
    spec
}

/// Sets `maximum` on an integer property of a component schema.
fn set_property_maximum(spec: &mut utoipa::openapi::OpenApi, schema: &str, property: &str, maximum: u64) {
    let Some(RefOr::T(Schema::Object(object))) =
        spec.components.as_mut().and_then(|components| components.schemas.get_mut(schema))
    else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property) {
        field.maximum = Some(utoipa::Number::UInt(maximum as usize));
    }
}
