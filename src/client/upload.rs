//! The upload state machine: `created → uploading → processing → ready | failed`.
//!
//! [`Uploader::upload`] opens (or resumes) a session, sends the missing parts in parallel with
//! per-part retries, and completes it; [`Uploader::wait`] then polls the video until the pipeline
//! is done. Both report [`UploadEvent`]s on an optional channel, which is how the CLI draws its
//! progress and how tests observe the phases.

use std::path::Path;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::ClientError;
use super::http::ReelClient;
use super::model::{CreateUpload, PartTarget, RegisterPart, UploadSession, VideoView};
use super::parts::{part_range, read_part};
use super::retry::{RetryPolicy, retry};
use super::state::{Fingerprint, ResumeState, StateStore};

/// Where an upload is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadPhase {
    /// The session exists (new, or found again to resume).
    Created,
    /// Parts are being sent.
    Uploading,
    /// Completed; the pipeline has the video.
    Processing,
    /// Playable.
    Ready,
    /// The pipeline gave up on it.
    Failed,
}

/// What the uploader reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadEvent {
    /// The upload entered a new phase.
    Phase(UploadPhase),
    /// The session to send to is known.
    Session {
        /// Session id.
        upload_id: String,
        /// Parts in total.
        part_count: u32,
        /// Bytes in total.
        total_bytes: u64,
        /// Parts the server already held (resumed from an earlier run).
        resumed_parts: u32,
        /// Bytes of those parts.
        resumed_bytes: u64,
    },
    /// A part is stored on the server.
    PartSent {
        /// Part number.
        part_number: u32,
        /// Its size.
        bytes: u64,
    },
    /// A request failed transiently and will be tried again.
    Retrying {
        /// Attempt that failed (1-based).
        attempt: u32,
        /// Wait before the next one.
        delay: Duration,
        /// The failure.
        error: String,
    },
    /// The session is complete and the video exists.
    Completed {
        /// Session id.
        upload_id: String,
        /// The video.
        video_id: String,
        /// Parts found on the server from an earlier run.
        resumed_parts: u32,
    },
    /// The pipeline reported progress.
    Stage {
        /// Current stage, if the server names one.
        stage: Option<String>,
        /// Time since completion.
        elapsed_ms: Option<i64>,
    },
}

/// Tunables of an upload.
#[derive(Debug, Clone, Copy)]
pub struct UploadOptions {
    /// Parts in flight at once (at least 1).
    pub concurrency: usize,
    /// Retry policy of every request.
    pub retry: RetryPolicy,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions { concurrency: 4, retry: RetryPolicy::default() }
    }
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    /// The session.
    pub upload_id: String,
    /// The video it became.
    pub video_id: String,
    /// Parts that were already on the server from an earlier, interrupted run.
    pub resumed_parts: u32,
}

/// Uploads files to one server, resuming interrupted uploads.
#[derive(Debug, Clone)]
pub struct Uploader {
    client: ReelClient,
    store: StateStore,
    options: UploadOptions,
    events: Option<UnboundedSender<UploadEvent>>,
}

/// What every part worker needs to know about the upload.
struct PartJob<'a> {
    path: &'a Path,
    upload_id: &'a str,
    part_size: u64,
    size: u64,
}

impl Uploader {
    /// An uploader using `client`, keeping resume state in `store`.
    pub fn new(client: ReelClient, store: StateStore, options: UploadOptions) -> Self {
        Uploader { client, store, options, events: None }
    }

    /// Reports progress on `events`.
    pub fn with_events(mut self, events: UnboundedSender<UploadEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// Uploads the file at `path` and completes the session. Resumes the file's earlier session
    /// when it is unchanged and the session still open. When `cancel` fires, stops sending and
    /// answers [`ClientError::Interrupted`], leaving the session (and its resume state) in place.
    pub async fn upload(&self, path: &Path, cancel: &CancellationToken) -> Result<UploadOutcome, ClientError> {
        let file = Fingerprint::of(path).await?;
        let session = self.open_session(&file).await?;
        let resumed_parts = u32::try_from(session.received_parts.len()).unwrap_or(u32::MAX);
        self.announce(&session, resumed_parts);
        let job =
            PartJob { path: &file.path, upload_id: &session.upload_id, part_size: session.part_size, size: file.size };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ClientError::Interrupted { upload_id: session.upload_id.clone() }),
            sent = self.send_parts(&job, session.parts.clone()) => sent?,
        }
        if Fingerprint::of(path).await? != file {
            return Err(ClientError::FileChanged { path: path.to_owned() });
        }
        let video_id = self.retrying(|| self.client.complete(&session.upload_id)).await?;
        self.store.remove(&file.path).await?;
        let outcome = UploadOutcome { upload_id: session.upload_id, video_id, resumed_parts };
        self.emit(UploadEvent::Completed {
            upload_id: outcome.upload_id.clone(),
            video_id: outcome.video_id.clone(),
            resumed_parts,
        });
        self.emit(UploadEvent::Phase(UploadPhase::Processing));
        Ok(outcome)
    }

    /// Polls the video until it is ready or failed, waiting as long as the server asks
    /// (`poll_after_ms`, else `Retry-After`), at most `timeout` in all. Until the video is
    /// playable it asks at least every [`PLAYABLE_POLL`], so `playable_after` is measured to
    /// that precision. Times run from the call, which follows the completion at once.
    pub async fn wait(
        &self,
        video_id: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Waited, ClientError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut playable_after = None;
        loop {
            let reply = self.retrying(|| self.client.video(video_id)).await?;
            let phase = match &reply.view {
                VideoView::Ready { .. } => Some(UploadPhase::Ready),
                VideoView::Failed { .. } => Some(UploadPhase::Failed),
                VideoView::Processing { .. } => None,
            };
            if let Some(phase) = phase {
                let ready_after = (phase == UploadPhase::Ready).then(|| started.elapsed());
                let playable_after = playable_after.or(ready_after);
                return Ok(Waited { view: self.finish(reply.view, phase), playable_after, ready_after });
            }
            let delay = match &reply.view {
                VideoView::Processing { stage, elapsed_ms, poll_after_ms, playable, .. } => {
                    self.emit(UploadEvent::Stage { stage: stage.clone(), elapsed_ms: *elapsed_ms });
                    if *playable && playable_after.is_none() {
                        playable_after = Some(started.elapsed());
                    }
                    let asked = poll_delay(*poll_after_ms, reply.retry_after);
                    if playable_after.is_none() { asked.min(PLAYABLE_POLL) } else { asked }
                }
                _ => Duration::ZERO,
            };
            if Instant::now() + delay > deadline {
                return Err(ClientError::WaitTimeout { video_id: video_id.to_owned(), waited: timeout });
            }
            tokio::select! {
                () = cancel.cancelled() => return Err(ClientError::WaitInterrupted { video_id: video_id.to_owned() }),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn finish(&self, view: VideoView, phase: UploadPhase) -> VideoView {
        self.emit(UploadEvent::Phase(phase));
        view
    }

    /// The file's earlier session if it can be resumed, else a new one (recorded for resume).
    async fn open_session(&self, file: &Fingerprint) -> Result<UploadSession, ClientError> {
        if let Some(session) = self.resumable(file).await? {
            return Ok(session);
        }
        let request = create_request(file);
        let session = self.retrying(|| self.client.create_upload(&request)).await?;
        let state = ResumeState {
            server: self.client.base().to_owned(),
            upload_id: session.upload_id.clone(),
            file: file.clone(),
        };
        self.store.save(&state).await?;
        Ok(session)
    }

    /// The session saved for this unchanged file, if the server still takes parts for it.
    async fn resumable(&self, file: &Fingerprint) -> Result<Option<UploadSession>, ClientError> {
        let Some(state) = self.store.load(&file.path).await.filter(|s| s.matches(self.client.base(), file)) else {
            return Ok(None);
        };
        match self.retrying(|| self.client.upload(&state.upload_id)).await {
            Ok(session) if session.status.is_open() && session.size_bytes == file.size => Ok(Some(session)),
            Ok(_) | Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn announce(&self, session: &UploadSession, resumed_parts: u32) {
        self.emit(UploadEvent::Phase(UploadPhase::Created));
        self.emit(UploadEvent::Session {
            upload_id: session.upload_id.clone(),
            part_count: session.part_count,
            total_bytes: session.size_bytes,
            resumed_parts,
            resumed_bytes: session.received_parts.iter().map(|p| p.size_bytes).sum(),
        });
        self.emit(UploadEvent::Phase(UploadPhase::Uploading));
    }

    async fn send_parts(&self, job: &PartJob<'_>, targets: Vec<PartTarget>) -> Result<(), ClientError> {
        let concurrency = self.options.concurrency.max(1);
        futures::stream::iter(targets).map(Ok).try_for_each_concurrent(concurrency, |t| self.send_part(job, t)).await
    }

    /// Reads one part, PUTs it (with retries) and, for a presigned bucket URL, registers it.
    async fn send_part(&self, job: &PartJob<'_>, target: PartTarget) -> Result<(), ClientError> {
        let range = part_range(target.part_number, job.part_size, job.size)
            .filter(|r| r.end - r.start == target.size_bytes)
            .ok_or_else(|| ClientError::Protocol(format!("part {} does not fit the file", target.part_number)))?;
        let part = read_part(job.path, range).await?;
        let etag = self.retrying(|| self.client.put_part(&target, part.bytes.clone(), &part.sha256)).await?;
        if !self.client.is_own(&target.url) {
            let register = || {
                let registration =
                    RegisterPart { part_number: target.part_number, etag: etag.clone(), sha256: part.sha256.clone() };
                self.client.register_parts(job.upload_id, vec![registration])
            };
            self.retrying(register).await?;
        }
        self.emit(UploadEvent::PartSent { part_number: target.part_number, bytes: target.size_bytes });
        Ok(())
    }

    async fn retrying<T, F, Fut>(&self, operation: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let report = |attempt, error: &ClientError, delay| {
            self.emit(UploadEvent::Retrying { attempt, delay, error: error.to_string() });
        };
        retry(&self.options.retry, operation, report).await
    }

    fn emit(&self, event: UploadEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// The create request for `file`: its name, and a media type from its extension (reel sniffs
/// the real container from the bytes; it only insists on `video/*`).
fn create_request(file: &Fingerprint) -> CreateUpload {
    let filename = file.path.file_name().map_or_else(|| "video".into(), |n| n.to_string_lossy().into_owned());
    let extension = file.path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    let content_type = match extension.as_deref() {
        Some("mov" | "qt") => "video/quicktime",
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        Some("ts" | "m2ts") => "video/mp2t",
        _ => "video/mp4",
    };
    CreateUpload { filename, content_type: content_type.into(), size_bytes: file.size }
}

/// The longest pause between polls while a waited-for video is not yet playable.
pub const PLAYABLE_POLL: Duration = Duration::from_millis(250);

/// What [`Uploader::wait`] saw.
#[derive(Debug, Clone)]
pub struct Waited {
    /// The video's final state (ready or failed).
    pub view: VideoView,
    /// When it was first seen playable (its creator could start watching).
    pub playable_after: Option<Duration>,
    /// When it was seen ready (in everyone's feed).
    pub ready_after: Option<Duration>,
}

/// How long to wait before polling again: the body's `poll_after_ms`, else `Retry-After`,
/// else a second; kept between 100 ms and 30 s.
fn poll_delay(poll_after_ms: Option<u64>, retry_after: Option<Duration>) -> Duration {
    let asked = poll_after_ms.map(Duration::from_millis).or(retry_after).unwrap_or(Duration::from_secs(1));
    asked.clamp(Duration::from_millis(100), Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> Fingerprint {
        Fingerprint { path: Path::new("/v").join(name), size: 3, mtime_ns: 1, head_sha256: String::new() }
    }

    #[test]
    fn the_body_hint_wins_over_retry_after_and_both_are_bounded() {
        assert_eq!(poll_delay(Some(1500), Some(Duration::from_secs(9))), Duration::from_millis(1500));
        assert_eq!(poll_delay(None, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(poll_delay(None, None), Duration::from_secs(1));
        assert_eq!(poll_delay(Some(0), None), Duration::from_millis(100));
        assert_eq!(poll_delay(Some(600_000), None), Duration::from_secs(30));
    }

    #[test]
    fn the_media_type_follows_the_extension_and_defaults_to_mp4() {
        assert_eq!(create_request(&file("a.MOV")).content_type, "video/quicktime");
        assert_eq!(create_request(&file("a.webm")).content_type, "video/webm");
        assert_eq!(create_request(&file("a")).content_type, "video/mp4");
        assert_eq!(create_request(&file("clip.mp4")).filename, "clip.mp4");
    }
}
