//! The public event envelope `{id, type, created_at, data}`, built once from an outbox event
//! when it is exported and then frozen: every channel and every redelivery carries these bytes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::db::{Db, DbError, RawEvent};
use crate::model::{EventType, Generation, VideoId};

/// One event as receivers see it.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    /// The outbox event id (UUIDv7): the `webhook-id` and the `Nats-Msg-Id`.
    pub id: Uuid,
    /// Public type, e.g. `video.ready`.
    #[serde(rename = "type")]
    pub event_type: &'static str,
    /// When the state change was committed.
    pub created_at: DateTime<Utc>,
    /// Type-specific facts (README, "Events").
    pub data: Value,
}

/// Builds the envelope of a stored event: `Ok(Err(reason))` when the event can never be
/// exported (malformed, or about a video that no longer exists).
pub async fn build(db: &Db, origin: &str, raw: &RawEvent) -> Result<Result<Envelope, String>, DbError> {
    let event = match raw.parse() {
        Ok(event) => event,
        Err(reason) => return Ok(Err(reason)),
    };
    let payload = event.payload.as_object().cloned().unwrap_or_default();
    let data = match event.event_type {
        EventType::UploadCompleted => Ok(pick(&payload, &["upload_id", "video_id", "creator_id", "size_bytes"])),
        EventType::UploadExpired => Ok(pick(&payload, &["upload_id", "creator_id"])),
        EventType::VideoFailed => Ok(pick(&payload, &["video_id", "generation", "failed_reason", "retryable"])),
        _ => video_data(db, origin, event.event_type, &event.aggregate_id, &payload).await?,
    };
    Ok(data.map(|data| Envelope {
        id: event.id,
        event_type: event.event_type.public_name(),
        created_at: event.created_at,
        data,
    }))
}

fn pick(payload: &Map<String, Value>, keys: &[&str]) -> Value {
    Value::Object(keys.iter().map(|k| ((*k).to_owned(), payload.get(*k).cloned().unwrap_or(Value::Null))).collect())
}

/// The data of the events that describe a video's playback state, read from the video as the
/// event is exported.
async fn video_data(
    db: &Db,
    origin: &str,
    event_type: EventType,
    aggregate: &str,
    payload: &Map<String, Value>,
) -> Result<Result<Value, String>, DbError> {
    let Ok(video_id) = aggregate.parse::<VideoId>() else {
        return Ok(Err(format!("aggregate {aggregate:?} is not a video id")));
    };
    let Some(video) = db.playback_row(video_id).await? else {
        return Ok(Err(format!("video {video_id} does not exist")));
    };
    let generation = payload.get("generation").and_then(Value::as_i64).map_or(video.generation, Generation::new);
    let url = |key: Option<&str>| key.map(|key| format!("{origin}/{key}"));
    let manifest = url(payload.get("manifest_key").and_then(Value::as_str));
    let renditions = || async {
        let rows = db.renditions_of(video_id, generation).await?;
        Ok::<_, DbError>(
            rows.iter()
                .map(|r| {
                    json!({"name": r.profile, "width": r.width, "height": r.height,
                           "bitrate_kbps": r.bitrate_kbps, "codecs": r.codec})
                })
                .collect::<Vec<_>>(),
        )
    };
    let data = match event_type {
        EventType::VideoPlayable => {
            json!({"video_id": video_id, "generation": generation, "playback_manifest_url": manifest})
        }
        EventType::VideoReady => json!({
            "video_id": video_id,
            "generation": generation,
            "creator_id": video.creator_id.as_str(),
            "duration_ms": video.duration_ms,
            "width": video.width,
            "height": video.height,
            "playback_manifest_url": manifest,
            "thumbnail_url": url(video.thumbnail_url.as_deref()),
            "renditions": renditions().await?,
        }),
        EventType::LadderCompleted => json!({
            "video_id": video_id,
            "generation": generation,
            "playback_manifest_url": manifest,
            "renditions": renditions().await?,
        }),
        _ => json!({"video_id": video_id, "generation": video.generation}),
    };
    Ok(Ok(data))
}
