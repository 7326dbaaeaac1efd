//! Upload ingest: sessions, parts, completion (with its outbox event) and expiry.
//!
//! The service never waits for transcoding: completion assembles the source object, then commits
//! the `processing` video row and the `video_upload_completed` event in one transaction.

pub mod plan;
pub mod sniff;
pub mod sweeper;
pub mod verify;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::config::{QuotasConfig, UploadsConfig};
use crate::db::{Db, DbError, NewUploadSession, NewVideo};
use crate::model::{
    AuthUser, EventType, OutboxEvent, StoredPart, UploadId, UploadSession, UploadStatus, UserId, VideoId,
};
use crate::storage::{Assembly, Naming, Storage, StorageError, keys};
use plan::CreateUpload;
use verify::{Expected, Refusal, Verdict, Verifying};

/// Errors of the ingest operations; the API maps each to an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The request is malformed.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// No such upload, or not the caller's.
    #[error("upload not found")]
    NotFound,
    /// The part number is outside the plan.
    #[error("part {part_number} is not part of this upload")]
    NoSuchPart { part_number: u32 },
    /// The session no longer accepts this operation.
    #[error("the upload is {}", status.as_str())]
    NotOpen { status: UploadStatus },
    /// A completion of this upload is in progress; it cannot be aborted meanwhile.
    #[error("the upload is being completed")]
    Completing,
    /// The part body had the wrong length.
    #[error("part {part_number} must be {expected} bytes, received {received}")]
    SizeMismatch { part_number: u32, expected: u64, received: u64 },
    /// A checksum did not match.
    #[error("{what} does not match the data")]
    ChecksumMismatch { what: String },
    /// A part registered as uploaded to the bucket is not there as described.
    #[error("part {part_number} could not be verified in the bucket: {reason}")]
    PartNotVerified { part_number: u32, reason: String },
    /// Completion needs every part.
    #[error("parts missing: {0:?}")]
    MissingParts(Vec<u32>),
    /// Registering parts needs direct uploads to the bucket.
    #[error("this server does not hand out direct bucket uploads; PUT parts to the server")]
    DirectUploadsDisabled,
    /// The client's body failed mid-way.
    #[error("the request body failed: {0}")]
    BodyRead(String),
    /// Metadata store failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Object store failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Where and how to send one part.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartTarget {
    /// 1-based part number.
    pub part_number: u32,
    /// Byte length the part must have.
    pub size_bytes: u64,
    /// HTTP method.
    pub method: &'static str,
    /// Destination: a presigned bucket URL, or this server's part URL (send your bearer token).
    pub url: String,
    /// Headers to send with it.
    pub headers: BTreeMap<String, String>,
}

/// A part a client reports as uploaded straight to the bucket.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPart {
    /// 1-based part number, at most the session's `part_count`.
    #[schema(minimum = 1, maximum = 10000)]
    pub part_number: u32,
    /// The ETag the bucket answered.
    #[schema(schema_with = plan::etag_schema)]
    pub etag: String,
    /// Optional SHA-256 of the part, hex.
    #[schema(schema_with = plan::part_sha256_schema)]
    pub sha256: Option<String>,
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Sessions moved to `expired`.
    pub expired: usize,
    /// Sessions whose staged data was freed.
    pub cleared: usize,
    /// Sessions the sweep failed on (retried at the next sweep).
    pub failed: usize,
}

/// How long a completion holds its session against expiry and abort. A completion that crashed
/// releases it when this lapses; one retried meanwhile takes it over.
pub const COMPLETION_HOLD: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The ingest service shared by the HTTP handlers and the sweeper.
#[derive(Debug, Clone)]
pub struct Ingest {
    db: Db,
    storage: Storage,
    limits: UploadsConfig,
    quotas: QuotasConfig,
    public_url: String,
}

impl Ingest {
    /// Builds the service.
    pub fn new(db: Db, storage: Storage, limits: UploadsConfig, quotas: QuotasConfig, public_url: String) -> Self {
        Ingest { db, storage, limits, quotas, public_url }
    }

    /// Opens a session for `creator`.
    pub async fn create(
        &self,
        creator: &UserId,
        request: CreateUpload,
        now: DateTime<Utc>,
    ) -> Result<UploadSession, IngestError> {
        let plan = plan::plan(request, &self.limits)?;
        let id = UploadId::new();
        let s3_upload_id = self.storage.begin_upload(id).await?;
        let ttl = chrono::Duration::from_std(self.limits.session_ttl).unwrap_or(chrono::Duration::days(1));
        let session = UploadSession {
            id,
            creator_id: creator.clone(),
            video_id: VideoId::new(),
            filename: plan.filename,
            content_type: plan.content_type,
            size_bytes: plan.size_bytes,
            sha256: plan.sha256,
            part_size: plan.part_size,
            part_count: plan.part_count,
            status: UploadStatus::Created,
            s3_upload_id,
            source_key: None,
            created_at: now,
            expires_at: now + ttl,
            completed_at: None,
        };
        if let Err(err) = self.db.insert_upload(NewUploadSession { session: &session, quotas: &self.quotas }).await {
            if let Err(cleanup) = self.storage.discard_staging(&session).await {
                tracing::warn!(upload_id = %id, error = %cleanup, "staging of a refused session not freed");
            }
            return Err(err.into());
        }
        tracing::info!(upload_id = %id, creator = %creator, size = session.size_bytes, parts = session.part_count, "upload session created");
        Ok(session)
    }

    /// Loads a session the caller owns; anyone else gets [`IngestError::NotFound`].
    pub async fn session_for(&self, caller: &AuthUser, id: UploadId) -> Result<UploadSession, IngestError> {
        match self.db.get_upload(id).await? {
            Some(session) if session.creator_id == caller.id => Ok(session),
            _ => Err(IngestError::NotFound),
        }
    }

    /// The parts the server holds for a session.
    pub async fn parts(&self, session: &UploadSession) -> Result<Vec<StoredPart>, IngestError> {
        Ok(self.db.list_parts(session.id).await?)
    }

    /// Upload targets for the given part numbers.
    pub fn targets(
        &self,
        session: &UploadSession,
        numbers: impl IntoIterator<Item = u32>,
    ) -> Result<Vec<PartTarget>, IngestError> {
        numbers.into_iter().map(|n| self.target(session, n)).collect()
    }

    fn target(&self, session: &UploadSession, part_number: u32) -> Result<PartTarget, IngestError> {
        let size_bytes = session.part_len(part_number).ok_or(IngestError::NoSuchPart { part_number })?;
        let mut headers = BTreeMap::new();
        let url = match self.storage.presign_part(session, part_number, size_bytes)? {
            Some(url) => url.to_string(),
            None => {
                headers.insert("content-type".to_owned(), "application/octet-stream".to_owned());
                format!("{}/v1/videos/uploads/{}/parts/{part_number}", self.public_url, session.id)
            }
        };
        Ok(PartTarget { part_number, size_bytes, method: "PUT", url, headers })
    }

    fn ensure_open(session: &UploadSession, now: DateTime<Utc>) -> Result<(), IngestError> {
        if !session.status.accepts_parts() {
            return Err(IngestError::NotOpen { status: session.status });
        }
        if session.expires_at <= now {
            return Err(IngestError::NotOpen { status: UploadStatus::Expired });
        }
        Ok(())
    }

    /// Checks that part `part_number` may be sent now and returns what its body must match.
    /// Cheap and body-free, so a caller can refuse before reading anything.
    pub fn prepare_part(
        &self,
        session: &UploadSession,
        part_number: u32,
        declared: &PartDeclaration,
        now: DateTime<Utc>,
    ) -> Result<Expected, IngestError> {
        Self::ensure_open(session, now)?;
        let len = session.part_len(part_number).ok_or(IngestError::NoSuchPart { part_number })?;
        if let Some(received) = declared.content_length.filter(|&n| n != len) {
            return Err(IngestError::SizeMismatch { part_number, expected: len, received });
        }
        Ok(Expected { len, md5: declared.md5, sha256: declared.sha256 })
    }

    /// Streams one part, prepared by [`Ingest::prepare_part`], through verification into
    /// staging. A part that fails verification, or whose body sends nothing for
    /// `uploads.part_idle_timeout`, is not stored, and an earlier copy of it stays intact.
    pub async fn put_part<S, E>(
        &self,
        session: &UploadSession,
        part_number: u32,
        expected: Expected,
        body: S,
        now: DateTime<Utc>,
    ) -> Result<StoredPart, IngestError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let len = expected.len;
        let (verifying, verdict) = Verifying::new(idle_limited(body, self.limits.part_idle_timeout), expected);
        let stored = self.storage.stage_part(session, part_number, len, verifying).await;
        let verdict = verdict.lock().ok().and_then(|mut slot| slot.take());
        let sha256 = match (stored.as_ref(), verdict) {
            (_, Some(Verdict::Refused(refusal))) => return Err(refused(part_number, refusal)),
            (Err(_), _) | (Ok(_), None) => {
                return Err(stored.err().map_or_else(|| IngestError::BodyRead("body ended early".into()), Into::into));
            }
            (Ok(_), Some(Verdict::Accepted { sha256 })) => sha256,
        };
        let etag = stored?;
        let part = StoredPart { part_number, size_bytes: len, etag, sha256: Some(sha256) };
        if !self.db.record_parts(session.id, std::slice::from_ref(&part), now).await? {
            self.storage.discard_staging(session).await?;
            return Err(IngestError::NotOpen { status: UploadStatus::Aborted });
        }
        Ok(part)
    }

    /// Records parts that a client PUT straight to the bucket, after checking each one is
    /// there with the planned size and (where the bucket lists ETags) the reported ETag. All or
    /// nothing. `CompleteMultipartUpload` re-checks every ETag at completion.
    pub async fn register_parts(
        &self,
        session: &UploadSession,
        reported: Vec<RegisterPart>,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredPart>, IngestError> {
        plan::check_registration(&reported)?;
        Self::ensure_open(session, now)?;
        if !self.storage.direct_uploads() {
            return Err(IngestError::DirectUploadsDisabled);
        }
        let listed = self.storage.list_staged_parts(session).await?;
        let mut parts = Vec::with_capacity(reported.len());
        for part in reported {
            let part_number = part.part_number;
            let len = session.part_len(part_number).ok_or(IngestError::NoSuchPart { part_number })?;
            let unverified = |reason: &str| IngestError::PartNotVerified { part_number, reason: reason.to_owned() };
            let found =
                listed.iter().find(|p| p.part_number == part_number).ok_or_else(|| unverified("not in the bucket"))?;
            if found.etag.as_deref().is_some_and(|etag| normalize_etag(etag) != normalize_etag(&part.etag)) {
                return Err(unverified("etag differs from the bucket's"));
            }
            if found.size != len {
                return Err(unverified(&format!("size is {} bytes, expected {len}", found.size)));
            }
            parts.push(StoredPart {
                part_number,
                size_bytes: len,
                etag: found.etag.clone().unwrap_or(part.etag),
                sha256: part.sha256.map(|s| s.to_ascii_lowercase()),
            });
        }
        if !self.db.record_parts(session.id, &parts, now).await? {
            return Err(IngestError::NotOpen { status: UploadStatus::Aborted });
        }
        Ok(parts)
    }

    /// Completes the upload: assembles the source, then commits the `processing` video and the
    /// `video_upload_completed` event together. Calling it again returns the same video id, and
    /// a completion retried after a crash between assembly and commit finishes. While it runs
    /// the session is held ([`COMPLETION_HOLD`]): the sweeper does not expire it and abort
    /// refuses.
    pub async fn complete(&self, session: &UploadSession, now: DateTime<Utc>) -> Result<VideoId, IngestError> {
        if session.status == UploadStatus::Completed {
            return Ok(session.video_id);
        }
        Self::ensure_open(session, now)?;
        let parts = self.db.list_parts(session.id).await?;
        let missing: Vec<u32> =
            (1..=session.part_count).filter(|n| !parts.iter().any(|p| p.part_number == *n)).collect();
        if !missing.is_empty() {
            return Err(IngestError::MissingParts(missing));
        }
        let hold = chrono::Duration::from_std(COMPLETION_HOLD).unwrap_or_default();
        if !self.db.begin_completion(session.id, now + hold, now).await? {
            return self.already_closed(session.id).await;
        }
        let completed = self.complete_held(session, &parts, now).await;
        if completed.is_err() {
            if let Err(err) = self.db.end_completion(session.id).await {
                tracing::warn!(upload_id = %session.id, error = %err, "completion hold not released; it lapses");
            }
        }
        completed
    }

    async fn complete_held(
        &self,
        session: &UploadSession,
        parts: &[StoredPart],
        now: DateTime<Utc>,
    ) -> Result<VideoId, IngestError> {
        let key = self.assemble(session, parts).await?;
        let video = NewVideo {
            id: session.video_id,
            creator_id: session.creator_id.clone(),
            upload_id: session.id,
            origin_object_key: key.clone(),
            created_at: now,
        };
        let event = OutboxEvent {
            id: Uuid::now_v7(),
            event_type: EventType::UploadCompleted,
            aggregate_id: session.video_id.to_string(),
            payload: json!({
                "video_id": session.video_id,
                "upload_id": session.id,
                "creator_id": session.creator_id,
                "source_key": key,
                "size_bytes": session.size_bytes,
            }),
            created_at: now,
        };
        if !self.db.complete_upload(session.id, &video, &event, &self.quotas).await? {
            return self.already_closed(session.id).await;
        }
        let elapsed = (now - session.created_at).num_milliseconds().max(0);
        metrics::histogram!("ingest_to_complete_ms").record(elapsed as f64);
        tracing::info!(upload_id = %session.id, video_id = %session.video_id, ingest_to_complete_ms = elapsed, "upload completed");
        self.clear_staging(session, now).await;
        Ok(session.video_id)
    }

    async fn assemble(&self, session: &UploadSession, parts: &[StoredPart]) -> Result<String, IngestError> {
        if let Some(key) = &session.source_key {
            if self.storage.exists(&key.as_str().into()).await? {
                return Ok(key.clone());
            }
        }
        let prefix = keys::source_prefix(&session.creator_id, session.video_id);
        if let Some(key) = self.storage.find_source(&prefix).await? {
            self.db.set_source_key(session.id, key.as_ref()).await?;
            tracing::info!(upload_id = %session.id, key = %key, "source already assembled by an earlier attempt");
            return Ok(key.to_string());
        }
        let started = Instant::now();
        let naming = Naming {
            head_len: sniff::SNIFF_LEN,
            name: |head: &[u8]| keys::source(&session.creator_id, session.video_id, sniff::extension(head)),
        };
        match self.storage.assemble(session, parts, naming).await? {
            Assembly::Stored { key } => {
                self.db.set_source_key(session.id, key.as_ref()).await?;
                tracing::info!(upload_id = %session.id, key = %key, elapsed_ms = started.elapsed().as_millis() as u64, "source assembled");
                Ok(key.to_string())
            }
            Assembly::ChecksumMismatch { actual, parts_discarded } => {
                tracing::warn!(upload_id = %session.id, actual, parts_discarded, "whole-file checksum mismatch");
                if parts_discarded {
                    self.db.end_completion(session.id).await?;
                    self.db.close_upload(session.id, UploadStatus::Aborted, Utc::now()).await?;
                    self.clear_staging(session, Utc::now()).await;
                }
                let what = if parts_discarded {
                    "the declared sha256 of the file (the upload was discarded; start a new one)"
                } else {
                    "the declared sha256 of the file"
                };
                Err(IngestError::ChecksumMismatch { what: what.into() })
            }
        }
    }

    async fn already_closed(&self, upload_id: UploadId) -> Result<VideoId, IngestError> {
        match self.db.get_upload(upload_id).await? {
            Some(s) if s.status == UploadStatus::Completed => Ok(s.video_id),
            Some(s) => Err(IngestError::NotOpen { status: s.status }),
            None => Err(IngestError::NotFound),
        }
    }

    /// Aborts an open upload and frees its staged data. Aborting twice is fine; aborting a
    /// completed upload is a conflict.
    pub async fn abort(&self, session: &UploadSession, now: DateTime<Utc>) -> Result<(), IngestError> {
        if session.status.accepts_parts() && self.db.close_upload(session.id, UploadStatus::Aborted, now).await? {
            self.storage.discard_staging(session).await?;
            self.db.mark_staging_cleared(session.id, now).await?;
            tracing::info!(upload_id = %session.id, "upload aborted");
            return Ok(());
        }
        let status = if session.status.accepts_parts() {
            self.db.get_upload(session.id).await?.map_or(UploadStatus::Aborted, |closed| closed.status)
        } else {
            session.status
        };
        match status {
            UploadStatus::Completed => Err(IngestError::NotOpen { status }),
            open if open.accepts_parts() => Err(IngestError::Completing),
            _ => Ok(()),
        }
    }

    async fn clear_staging(&self, session: &UploadSession, now: DateTime<Utc>) {
        let cleared = async {
            self.storage.discard_staging(session).await?;
            self.db.mark_staging_cleared(session.id, now).await?;
            Ok::<_, IngestError>(())
        };
        if let Err(err) = cleared.await {
            tracing::warn!(upload_id = %session.id, error = %err, "staging not freed yet; the sweeper will retry");
        }
    }

    /// Expires open sessions past their deadline (except those being completed) and frees the
    /// staged data of closed ones. A session that fails is logged and retried next time; it
    /// never stops the sweep of the others.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport, IngestError> {
        const BATCH: i64 = 100;
        let mut report = SweepReport::default();
        for session in self.db.expired_uploads(now, BATCH).await? {
            let event = OutboxEvent {
                id: Uuid::now_v7(),
                event_type: EventType::UploadExpired,
                aggregate_id: session.id.to_string(),
                payload: json!({"upload_id": session.id, "creator_id": session.creator_id}),
                created_at: now,
            };
            match self.db.expire_upload(session.id, &event, now).await {
                Ok(true) => {
                    report.expired += 1;
                    tracing::info!(upload_id = %session.id, "upload session expired");
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(upload_id = %session.id, error = %err, "expiring the session failed"),
            }
        }
        for session in self.db.uncleared_uploads(now, BATCH).await? {
            let cleared = async {
                self.storage.discard_staging(&session).await?;
                self.db.mark_staging_cleared(session.id, now).await?;
                Ok::<_, IngestError>(())
            };
            match cleared.await {
                Ok(()) => report.cleared += 1,
                Err(err) => {
                    report.failed += 1;
                    tracing::warn!(upload_id = %session.id, error = %err, "freeing staged data failed; retrying later");
                }
            }
        }
        Ok(report)
    }
}

/// What a part PUT declares in its headers.
#[derive(Debug, Clone, Default)]
pub struct PartDeclaration {
    /// `Content-Length`, when sent.
    pub content_length: Option<u64>,
    /// `Content-MD5`, decoded.
    pub md5: Option<[u8; 16]>,
    /// `x-reel-checksum-sha256`, decoded.
    pub sha256: Option<[u8; 32]>,
}

fn refused(part_number: u32, refusal: Refusal) -> IngestError {
    match refusal {
        Refusal::Size { expected, received } => IngestError::SizeMismatch { part_number, expected, received },
        Refusal::Checksum { algorithm } => {
            IngestError::ChecksumMismatch { what: format!("the {algorithm} of part {part_number}") }
        }
        Refusal::Transport(reason) => IngestError::BodyRead(reason),
    }
}

/// `body`, ended with an error when no data arrives for `idle`: a client that stops sending
/// does not hold a connection, a staging file and a request slot forever.
fn idle_limited<S, E>(body: S, idle: Duration) -> Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    Box::pin(futures::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
            Ok(Some(Err(err))) => Some((Err(err.to_string()), None)),
            Ok(None) => None,
            Err(_) => Some((Err(format!("no data for {}", humantime::format_duration(idle))), None)),
        }
    }))
}

fn normalize_etag(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}
