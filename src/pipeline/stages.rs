//! The work of each stage. Phase 1 (`probe → transcode → publish_ready`) makes a video playable
//! and then ready on its start rungs; phase 2 (`ladder`) adds the remaining rungs under a new,
//! versioned master. Each attempt of a phase writes under its own key prefix
//! ([`keys::start_root`], [`keys::ladder_root`]), so a restart never rewrites a URL a viewer
//! may already hold, and every master is written after the files it names.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use object_store::path::Path as Key;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

use super::lease::Lease;
use super::progressive::{StartPlan, Track};
use super::source::Prepared;
use super::{Claimed, Pipeline, StageError};
use crate::db::{NewRendition, ProbeFacts};
use crate::media::{self, AudioTrack, LadderOutput, ProbedMedia, RenditionOutput, Variant};
use crate::model::{EventType, Job, NewJob, OutboxEvent, Stage, VideoId};
use crate::model::{Video, VideoStatus};
use crate::storage::keys::{self, MEDIA_PLAYLIST};

/// Finished files waiting for upload while ffmpeg keeps encoding.
const UPLOAD_QUEUE: usize = 64;

/// What phase 1 published, kept on the video for phase 2 (JSON in `start_ladder`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StartLadder {
    /// Key prefix of the phase-1 attempt that finished.
    root: String,
    /// Its renditions and audio, measured.
    output: LadderOutput,
    /// Names of the rungs phase 2 still has to encode.
    remaining: Vec<String>,
}

impl Pipeline {
    /// Runs the job's stage. Returns the next stage when it was handed straight to this worker.
    pub(super) async fn run_stage(&self, job: &Job, lease: &Lease) -> Result<Option<Claimed>, StageError> {
        let video = self.db.get_video(job.video_id).await?.ok_or(StageError::LeaseLost)?;
        let expected = if job.stage == Stage::Ladder { VideoStatus::Ready } else { VideoStatus::Processing };
        if video.generation != job.generation || video.status != expected {
            return Err(StageError::LeaseLost);
        }
        match job.stage {
            Stage::Probe => self.probe_stage(job, &video).await,
            Stage::Transcode => self.start_stage(job, &video, lease).await,
            Stage::PublishReady => self.publish_stage(job, &video).await.map(|()| None),
            Stage::Ladder => self.ladder_stage(job, &video, lease).await.map(|()| None),
        }
    }

    /// Finishes `job` and starts `next` on this worker at once, under a new claim.
    async fn hand_off(&self, job: &Job, next: Stage) -> Result<Option<Claimed>, StageError> {
        let next = NewJob { stage: next, max_attempts: self.config.max_attempts, ..NewJob::from(job) };
        let (asked, now) = (Instant::now(), Utc::now());
        match self.db.hand_off(job, &self.worker_id, &next, self.lease_until(now), now).await? {
            Some(handed) => Ok(handed.map(|job| (job, asked))),
            None => Err(StageError::LeaseLost),
        }
    }

    async fn probe_stage(&self, job: &Job, video: &Video) -> Result<Option<Claimed>, StageError> {
        let prepared = self.prepared(video, job.generation).await?;
        let probed = &prepared.probed;
        let facts = ProbeFacts {
            duration_ms: i64::try_from(probed.duration_ms).unwrap_or(i64::MAX),
            width: i64::from(probed.width),
            height: i64::from(probed.height),
            has_audio: probed.has_audio,
        };
        if !self.db.record_probe(job, &facts, Utc::now()).await? {
            return Err(StageError::LeaseLost);
        }
        tracing::info!(
            duration_ms = facts.duration_ms,
            width = facts.width,
            height = facts.height,
            has_audio = facts.has_audio,
            "probed"
        );
        self.sources.keep(prepared);
        self.hand_off(job, Stage::Transcode).await
    }

    /// Phase 1: the start rungs and the audio, published segment by segment.
    async fn start_stage(&self, job: &Job, video: &Video, lease: &Lease) -> Result<Option<Claimed>, StageError> {
        let prepared = self.prepared(video, job.generation).await?;
        let cfg = &self.config.ladder;
        let ladder_plan = media::plan_phases(&prepared.probed, cfg);
        let phase = ladder_plan.start_phase(cfg);
        let rest = ladder_plan.remaining;
        let audio = if prepared.probed.has_audio { phase.audio.clone() } else { Vec::new() };
        let audio_groups = if audio.is_empty() {
            std::collections::BTreeMap::new()
        } else {
            phase.rungs.iter().map(|r| (r.name.clone(), AudioTrack::for_rung(r, cfg).name)).collect()
        };
        if job.attempt > 1 {
            self.close_previous_attempt(video.id, lease).await?;
        }
        let root = keys::start_root(video.id, job.generation, job.attempt);
        let plan = StartPlan {
            job: job.clone(),
            lease: lease.clone(),
            out: prepared.dir().join(format!("start-{}", job.attempt)),
            root: root.clone(),
            rungs: phase.rungs.clone(),
            audio,
            audio_groups,
            frame_rate: prepared.probed.frame_rate,
            target_duration: cfg.grid().target_duration(),
            since: video.processing_since.unwrap_or(video.created_at),
        };
        let out = plan.out.clone();
        let (finished, to_publish) = mpsc::channel(UPLOAD_QUEUE);
        let (playable, first_segment) = oneshot::channel();
        let publisher = AbortOnDropHandle::new(tokio::spawn(self.clone().publish_start(plan, to_publish, playable)));
        let timeout = self.transcode_timeout(&prepared.probed);
        let encode =
            media::transcode(&self.tools, &prepared.source, &prepared.probed, &phase, cfg, &out, timeout, finished);
        let poster = self.poster_after_first_segment(job, lease, &prepared, &root, first_segment);
        let (ladder, poster) = tokio::join!(encode, poster);
        let tracks = publisher.await.map_err(|e| StageError::Transient(anyhow::anyhow!("publisher task: {e}")))?;
        let (ladder, tracks, poster) = (ladder?, tracks?, poster?);
        if !poster {
            self.write_poster(job, lease, &prepared, &root).await?;
        }
        let ladder = self.finish_start(lease, &root, &ladder, &tracks).await?;
        let start_ladder = StartLadder {
            root: root.to_string(),
            output: ladder,
            remaining: rest.iter().map(|r| r.name.clone()).collect(),
        };
        let renditions = renditions(&start_ladder.output, &root);
        let now = Utc::now();
        let stored = serde_json::to_string(&start_ladder).map_err(|e| StageError::Transient(e.into()))?;
        if !self.db.record_start(job, &stored, &renditions, now).await? {
            return Err(StageError::LeaseLost);
        }
        tracing::info!(renditions = renditions.len(), remaining = rest.len(), "start rungs packaged");
        self.sources.keep(prepared);
        self.hand_off(job, Stage::PublishReady).await
    }

    /// Ends every start playlist (`EVENT` + `ENDLIST`) and writes the measured master of the
    /// start rungs. Returns the phase's output with the durations as published.
    async fn finish_start(
        &self,
        lease: &Lease,
        root: &Key,
        ladder: &LadderOutput,
        tracks: &std::collections::BTreeMap<String, Track>,
    ) -> Result<LadderOutput, StageError> {
        let mut published = ladder.clone();
        for rendition in &mut published.renditions {
            rendition.segments = published_segments(tracks, &rendition.name, rendition.segments.len())?;
            (rendition.peak_bps, rendition.average_bps) = media::measure(&rendition.segments);
        }
        for audio in &mut published.audio {
            audio.segments = published_segments(tracks, &audio.name, audio.segments.len())?;
            (audio.peak_bps, audio.average_bps) = media::measure(&audio.segments);
        }
        let all = published.renditions.iter().flat_map(|r| &r.segments);
        let longest = all.chain(published.audio.iter().flat_map(|a| &a.segments)).map(|s| s.duration);
        let longest = longest.fold(0.0_f64, f64::max).round() as u32;
        published.target_duration = published.target_duration.max(longest);
        let names = published.renditions.iter().map(|r| (r.name.clone(), r.segments.clone()));
        let audio = published.audio.iter().map(|a| (a.name.clone(), a.segments.clone()));
        for (name, segments) in names.chain(audio) {
            let text = media::event_playlist(&segments, published.target_duration, true);
            lease.check()?;
            self.storage.upload_bytes(&root.child(name.as_str()).child(MEDIA_PLAYLIST), text.into()).await?;
        }
        lease.check()?;
        self.storage
            .upload_bytes(&root.child(keys::MASTER_PLAYLIST), media::master_playlist(&published).into())
            .await?;
        Ok(published)
    }

    /// A restarted phase 1 writes a new tree; the one a viewer may hold is closed, not changed.
    async fn close_previous_attempt(&self, video_id: VideoId, lease: &Lease) -> Result<(), StageError> {
        let row = self.db.playback_row(video_id).await?;
        if let Some(preview) = row.and_then(|r| r.preview_manifest_url) {
            self.close_abandoned(&preview, lease).await?;
        }
        Ok(())
    }

    /// Writes the poster once the first segment is out (so it never delays playability).
    /// `false` when phase 1 never got that far.
    async fn poster_after_first_segment(
        &self,
        job: &Job,
        lease: &Lease,
        prepared: &Prepared,
        root: &Key,
        first_segment: oneshot::Receiver<()>,
    ) -> Result<bool, StageError> {
        if first_segment.await.is_err() {
            return Ok(false);
        }
        self.write_poster(job, lease, prepared, root).await?;
        Ok(true)
    }

    async fn write_poster(&self, job: &Job, lease: &Lease, prepared: &Prepared, root: &Key) -> Result<(), StageError> {
        let local = prepared.dir().join(format!("poster-{}.jpg", Uuid::now_v7().simple()));
        media::poster(&self.tools, &prepared.source, &prepared.probed, &local, self.config.probe_timeout).await?;
        let key = root.child("poster.jpg");
        lease.check()?;
        self.storage.upload_file(&key, &local).await?;
        if !self.db.set_thumbnail(job, key.as_ref(), Utc::now()).await? {
            return Err(StageError::LeaseLost);
        }
        Ok(())
    }

    fn transcode_timeout(&self, probed: &ProbedMedia) -> Duration {
        let scaled = Duration::from_millis(probed.duration_ms).mul_f64(self.config.transcode_timeout_factor);
        scaled.max(self.config.transcode_timeout_min)
    }

    async fn start_of(&self, video: &Video) -> Result<StartLadder, StageError> {
        let stored = self.db.start_ladder(video.id, video.generation).await?;
        let stored =
            stored.ok_or_else(|| StageError::Transient(anyhow::anyhow!("phase 1 left no record of its output")))?;
        serde_json::from_str(&stored).map_err(|e| StageError::Transient(anyhow::anyhow!("phase 1 record: {e}")))
    }

    async fn publish_stage(&self, job: &Job, video: &Video) -> Result<(), StageError> {
        let start = self.start_of(video).await?;
        let now = Utc::now();
        let manifest = format!("{}/{}", start.root, keys::MASTER_PLAYLIST);
        let payload = json!({"video_id": video.id, "generation": job.generation, "manifest_key": manifest});
        let mut events = vec![event(EventType::VideoReady, video.id, payload.clone(), now)];
        let ladder = NewJob { stage: Stage::Ladder, max_attempts: self.config.max_attempts, ..NewJob::from(job) };
        let ladder = (!start.remaining.is_empty()).then_some(ladder);
        if ladder.is_none() {
            events.push(event(EventType::LadderCompleted, video.id, payload, now));
        }
        if !self.db.publish_video(job, &manifest, &events, ladder.as_ref(), now).await? {
            return Err(StageError::LeaseLost);
        }
        let since = video.processing_since.unwrap_or(video.created_at);
        let elapsed = (now - since).num_milliseconds().max(0) as f64;
        metrics::histogram!("complete_to_ready_ms").record(elapsed);
        if ladder.is_none() {
            metrics::histogram!("complete_to_ladder_ms").record(elapsed);
        }
        tracing::info!(complete_to_ready_ms = elapsed, "video ready");
        Ok(())
    }

    /// Phase 2: the remaining rungs, aligned with the start rungs, then the versioned master of
    /// the whole ladder.
    async fn ladder_stage(&self, job: &Job, video: &Video, lease: &Lease) -> Result<(), StageError> {
        let start = self.start_of(video).await?;
        let prepared = self.prepared(video, job.generation).await?;
        let rest = media::plan_phases(&prepared.probed, &self.config.ladder).remaining_phase();
        let root = keys::ladder_root(video.id, job.generation, job.attempt);
        let out = prepared.dir().join(format!("ladder-{}", job.attempt));
        let (finished, to_upload) = mpsc::channel(UPLOAD_QUEUE);
        let uploader = upload_as_finished(self.storage.clone(), lease.clone(), out.clone(), root.clone(), to_upload);
        let uploader = AbortOnDropHandle::new(tokio::spawn(uploader));
        let timeout = self.transcode_timeout(&prepared.probed);
        let ladder = media::transcode(
            &self.tools,
            &prepared.source,
            &prepared.probed,
            &rest,
            &self.config.ladder,
            &out,
            timeout,
            finished,
        )
        .await;
        let uploaded = uploader.await.map_err(|e| StageError::Transient(anyhow::anyhow!("uploader task: {e}")))?;
        let (ladder, _) = (ladder?, uploaded?);
        check_aligned(&start.output, &ladder, prepared.probed.fps())?;
        let generation_root = keys::packaged_root(video.id, job.generation);
        let master = merged_master(&start, &ladder, &generation_root, &root);
        let master_key = keys::ladder_master(video.id, job.generation, job.attempt);
        lease.check()?;
        self.storage.upload_bytes(&master_key, media::master_playlist(&master).into()).await?;
        let with_audio = LadderOutput { audio: start.output.audio.clone(), ..ladder.clone() };
        let renditions = renditions(&with_audio, &root);
        let now = Utc::now();
        let payload = json!({"video_id": video.id, "generation": job.generation, "manifest_key": master_key.as_ref()});
        let event = event(EventType::LadderCompleted, video.id, payload, now);
        if !self.db.complete_ladder(job, master_key.as_ref(), &renditions, &event, now).await? {
            return Err(StageError::LeaseLost);
        }
        let since = video.processing_since.unwrap_or(video.created_at);
        let elapsed = (now - since).num_milliseconds().max(0);
        metrics::histogram!("complete_to_ladder_ms").record(elapsed as f64);
        tracing::info!(complete_to_ladder_ms = elapsed, renditions = renditions.len(), "ladder complete");
        Ok(())
    }
}

impl From<&Job> for NewJob {
    fn from(job: &Job) -> Self {
        NewJob {
            video_id: job.video_id,
            generation: job.generation,
            stage: job.stage,
            max_attempts: job.max_attempts,
            priority: job.priority,
        }
    }
}

fn event(
    event_type: EventType,
    video_id: VideoId,
    payload: serde_json::Value,
    now: chrono::DateTime<Utc>,
) -> OutboxEvent {
    OutboxEvent { id: Uuid::now_v7(), event_type, aggregate_id: video_id.to_string(), payload, created_at: now }
}

/// The segments of `dir` as published, which must be the ones ffmpeg listed.
fn published_segments(
    tracks: &std::collections::BTreeMap<String, Track>,
    dir: &str,
    listed: usize,
) -> Result<Vec<media::SegmentStat>, StageError> {
    let segments = tracks.get(dir).map(|t| t.segments.clone()).unwrap_or_default();
    if segments.len() != listed {
        return Err(StageError::Transient(anyhow::anyhow!(
            "{dir}: published {} segments, ffmpeg listed {listed}",
            segments.len()
        )));
    }
    Ok(segments)
}

/// Phase 2's rungs must cut where the start rungs cut: same count, boundaries within half a
/// frame. Output that does not is invalid, and encoding it again would not change it.
fn check_aligned(start: &LadderOutput, rest: &LadderOutput, fps: f64) -> Result<(), StageError> {
    let tolerance = 0.5 / fps.max(1.0);
    let Some(reference) = start.renditions.first() else {
        return Ok(());
    };
    for other in &rest.renditions {
        let aligned = other.segments.len() == reference.segments.len()
            && reference
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| (a.duration - b.duration).abs() <= tolerance);
        if !aligned {
            return Err(StageError::Permanent(anyhow::anyhow!(
                "segments of {} are not aligned with {}",
                other.name,
                reference.name
            )));
        }
    }
    Ok(())
}

/// The whole ladder as one output, each rendition named by its path from the generation's root
/// (the versioned master lives there).
fn merged_master(start: &StartLadder, rest: &LadderOutput, generation_root: &Key, ladder_root: &Key) -> LadderOutput {
    let prefix =
        |root: &str| root.strip_prefix(generation_root.as_ref()).unwrap_or_default().trim_start_matches('/').to_owned();
    let (start_prefix, ladder_prefix) = (prefix(&start.root), prefix(ladder_root.as_ref()));
    let rename =
        |prefix: &str, name: &str| if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") };
    let mut merged = start.output.clone();
    for rendition in &mut merged.renditions {
        rendition.name = rename(&start_prefix, &rendition.name);
    }
    for audio in &mut merged.audio {
        audio.name = rename(&start_prefix, &audio.name);
    }
    for rendition in &mut merged.renditions {
        rendition.audio_group = rendition.audio_group.as_deref().map(|group| rename(&start_prefix, group));
    }
    merged
        .renditions
        .extend(rest.renditions.iter().map(|r| RenditionOutput { name: rename(&ladder_prefix, &r.name), ..r.clone() }));
    merged
}

/// Uploads each file ffmpeg finishes, while it keeps encoding. Returns how many were uploaded.
async fn upload_as_finished(
    storage: crate::storage::Storage,
    lease: Lease,
    out: PathBuf,
    root: Key,
    mut finished: mpsc::Receiver<PathBuf>,
) -> Result<usize, StageError> {
    let mut uploaded = 0;
    while let Some(file) = finished.recv().await {
        let relative = file.strip_prefix(&out).map_err(|_| {
            StageError::Transient(anyhow::anyhow!("{} is outside the output directory", file.display()))
        })?;
        let key = relative.iter().fold(root.clone(), |key, part| key.child(part.to_string_lossy().as_ref()));
        lease.check()?;
        storage.upload_file(&key, &file).await?;
        uploaded += 1;
    }
    Ok(uploaded)
}

/// Database rows for the renditions of `out`, with bandwidth and codecs as the master states them.
fn renditions(out: &LadderOutput, root: &Key) -> Vec<NewRendition> {
    out.renditions
        .iter()
        .map(|r| {
            let variant = Variant::measured(out, r);
            NewRendition {
                profile: r.name.clone(),
                width: i64::from(r.width),
                height: i64::from(r.height),
                bitrate_kbps: i64::try_from(variant.bandwidth / 1000).unwrap_or(i64::MAX),
                playlist_key: root.child(r.name.as_str()).child(MEDIA_PLAYLIST).to_string(),
                segment_count: i64::try_from(r.segments.len()).unwrap_or(i64::MAX),
                codec: variant.codecs,
            }
        })
        .collect()
}
