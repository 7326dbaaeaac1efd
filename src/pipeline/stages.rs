//! The work of each stage. Every stage is idempotent: a rerun after a crash overwrites the same
//! keys of the same generation, and the master playlist is written last, so nothing half-made is
//! ever reachable from a published manifest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use object_store::path::Path as Key;
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Pipeline, StageError};
use crate::db::{NewRendition, ProbeFacts};
use crate::media::{self, LadderOutput, MediaLimits, ProbedMedia};
use crate::model::{EventType, Job, NewJob, OutboxEvent, Stage};
use crate::model::{Video, VideoStatus};
use crate::storage::keys;

/// Finished files waiting for upload while ffmpeg keeps encoding.
const UPLOAD_QUEUE: usize = 64;

impl Pipeline {
    pub(super) async fn run_stage(&self, job: &Job) -> Result<(), StageError> {
        let video = self.db.get_video(job.video_id).await?.ok_or(StageError::LeaseLost)?;
        if video.generation != job.generation || video.status != VideoStatus::Processing {
            return Err(StageError::LeaseLost);
        }
        match job.stage {
            Stage::Probe => self.probe_stage(job, &video).await,
            Stage::Transcode => self.transcode_stage(job, &video).await,
            Stage::PublishReady => self.publish_stage(job, &video).await,
        }
    }

    fn limits(&self) -> MediaLimits {
        MediaLimits { max_duration: self.config.max_duration, max_side: self.config.max_side }
    }

    fn workspace(&self) -> Result<tempfile::TempDir, StageError> {
        std::fs::create_dir_all(&self.config.work_dir)?;
        Ok(tempfile::Builder::new().prefix("reel-job-").tempdir_in(&self.config.work_dir)?)
    }

    /// Copies the source object next to the job (ffmpeg reads local files only).
    async fn fetch_source(&self, video: &Video, dir: &Path) -> Result<PathBuf, StageError> {
        let extension = video.origin_object_key.rsplit('.').next().unwrap_or("bin");
        let local = dir.join(format!("source.{extension}"));
        self.storage.download(&Key::from(video.origin_object_key.as_str()), &local).await?;
        Ok(local)
    }

    async fn finish(&self, job: &Job, next: Stage) -> Result<(), StageError> {
        let next = NewJob { stage: next, max_attempts: job.max_attempts, ..NewJob::from(job) };
        if self.db.finish_job(job, &self.worker_id, Some(&next), Utc::now()).await? {
            Ok(())
        } else {
            Err(StageError::LeaseLost)
        }
    }

    async fn probe_stage(&self, job: &Job, video: &Video) -> Result<(), StageError> {
        let work = self.workspace()?;
        let source = self.fetch_source(video, work.path()).await?;
        let probed = media::probe(&self.tools, &source, &self.limits(), self.config.probe_timeout).await?;
        let poster = work.path().join("poster.jpg");
        media::poster(&self.tools, &source, &probed, &poster, self.config.probe_timeout).await?;
        let thumbnail = keys::poster(video.id, job.generation);
        self.storage.upload_file(&thumbnail, &poster).await?;
        let facts = ProbeFacts {
            duration_ms: i64::try_from(probed.duration_ms).unwrap_or(i64::MAX),
            width: i64::from(probed.width),
            height: i64::from(probed.height),
            has_audio: probed.has_audio,
            thumbnail_key: thumbnail.to_string(),
        };
        self.db.record_probe(video.id, job.generation, &facts, Utc::now()).await?;
        tracing::info!(
            duration_ms = facts.duration_ms,
            width = facts.width,
            height = facts.height,
            has_audio = facts.has_audio,
            "probed"
        );
        self.finish(job, Stage::Transcode).await
    }

    async fn transcode_stage(&self, job: &Job, video: &Video) -> Result<(), StageError> {
        let work = self.workspace()?;
        let source = self.fetch_source(video, work.path()).await?;
        let probed = media::probe(&self.tools, &source, &self.limits(), self.config.probe_timeout).await?;
        let phase = media::plan_phases(&probed, &self.config.ladder).single_phase(&self.config.ladder);
        let root = keys::packaged_root(video.id, job.generation);
        for stale in phase.rungs.iter().map(|r| r.name.as_str()).chain(phase.audio.iter().map(|a| a.name.as_str())) {
            self.storage.delete_prefix(&keys::rendition_dir(video.id, job.generation, stale)).await?;
        }
        let out = work.path().join("hls");
        let (finished, to_upload) = mpsc::channel(UPLOAD_QUEUE);
        let uploader = tokio::spawn(upload_as_finished(self.storage.clone(), out.clone(), root.clone(), to_upload));
        let timeout = self.transcode_timeout(&probed);
        let ladder =
            media::transcode(&self.tools, &source, &probed, &phase, &self.config.ladder, &out, timeout, finished).await;
        let uploaded =
            uploader.await.map_err(|e| StageError::Transient(anyhow::Error::new(e).context("uploader task")))?;
        let ladder = ladder?;
        let uploaded = uploaded?;
        let master = keys::master(video.id, job.generation);
        self.storage.upload_bytes(&master, media::master_playlist(&ladder).into()).await?;
        self.db.record_renditions(video.id, job.generation, &renditions(&ladder, job), Utc::now()).await?;
        tracing::info!(renditions = ladder.renditions.len(), files = uploaded, "ladder packaged");
        self.finish(job, Stage::PublishReady).await
    }

    fn transcode_timeout(&self, probed: &ProbedMedia) -> Duration {
        let scaled = Duration::from_millis(probed.duration_ms).mul_f64(self.config.transcode_timeout_factor);
        scaled.max(self.config.transcode_timeout_min)
    }

    async fn publish_stage(&self, job: &Job, video: &Video) -> Result<(), StageError> {
        let now = Utc::now();
        let manifest = keys::master(video.id, job.generation);
        let event = OutboxEvent {
            id: Uuid::now_v7(),
            event_type: EventType::VideoReady,
            aggregate_id: video.id.to_string(),
            payload: json!({"video_id": video.id, "generation": job.generation, "manifest_key": manifest.as_ref()}),
            created_at: now,
        };
        if !self.db.publish_video(job, &self.worker_id, manifest.as_ref(), &event, now).await? {
            return Err(StageError::LeaseLost);
        }
        let since = video.processing_since.unwrap_or(video.created_at);
        let elapsed = (now - since).num_milliseconds().max(0);
        metrics::histogram!("complete_to_ready_ms").record(elapsed as f64);
        tracing::info!(complete_to_ready_ms = elapsed, "video ready");
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

/// Uploads each file ffmpeg finishes, while it keeps encoding. Returns how many were uploaded.
async fn upload_as_finished(
    storage: crate::storage::Storage,
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
        storage.upload_file(&key, &file).await?;
        uploaded += 1;
    }
    Ok(uploaded)
}

fn renditions(ladder: &LadderOutput, job: &Job) -> Vec<NewRendition> {
    ladder
        .renditions
        .iter()
        .map(|r| {
            let variant = media::Variant::measured(ladder, r);
            NewRendition {
                profile: r.name.clone(),
                width: i64::from(r.width),
                height: i64::from(r.height),
                bitrate_kbps: i64::try_from(variant.bandwidth / 1000).unwrap_or(i64::MAX),
                playlist_key: keys::media_playlist(job.video_id, job.generation, &r.name).to_string(),
                segment_count: i64::try_from(r.segments.len()).unwrap_or(i64::MAX),
                codec: variant.codecs,
            }
        })
        .collect()
}
