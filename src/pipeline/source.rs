//! The source of a video, fetched and probed once and kept between its stages on this worker
//! (probe → transcode → publish_ready → ladder), so no stage downloads or probes it again. A
//! stage that runs elsewhere (after a crash or on another worker) fetches its own copy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use object_store::path::Path as Key;

use super::{Pipeline, StageError};
use crate::media::{self, MediaLimits, ProbedMedia};
use crate::model::{Generation, Video, VideoId};

/// Sources kept per process: one per worker in flight plus the one waiting for its phase 2.
const KEPT: usize = 4;

/// A fetched, probed source in its own scratch directory (deleted on drop).
#[derive(Debug)]
pub(super) struct Prepared {
    video_id: VideoId,
    generation: Generation,
    work: tempfile::TempDir,
    /// The local copy of the upload.
    pub(super) source: PathBuf,
    /// What the probe found.
    pub(super) probed: ProbedMedia,
}

impl Prepared {
    /// The scratch directory for this video's outputs.
    pub(super) fn dir(&self) -> &Path {
        self.work.path()
    }
}

/// Prepared sources waiting for their video's next stage.
#[derive(Debug, Clone, Default)]
pub(super) struct Sources(Arc<Mutex<Vec<Prepared>>>);

impl Sources {
    fn take(&self, video_id: VideoId, generation: Generation) -> Option<Prepared> {
        let mut kept = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = kept.iter().position(|p| p.video_id == video_id && p.generation == generation)?;
        Some(kept.remove(index))
    }

    /// Keeps `prepared` for the video's next stage, dropping the oldest beyond the limit.
    pub(super) fn keep(&self, prepared: Prepared) {
        let mut kept = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.push(prepared);
        let excess = kept.len().saturating_sub(KEPT);
        kept.drain(..excess);
    }
}

impl Pipeline {
    fn limits(&self) -> MediaLimits {
        MediaLimits { max_duration: self.config.max_duration, max_side: self.config.max_side, ..MediaLimits::default() }
    }

    /// The video's source, from this worker's last stage or fetched and probed now.
    pub(super) async fn prepared(&self, video: &Video, generation: Generation) -> Result<Prepared, StageError> {
        if let Some(prepared) = self.sources.take(video.id, generation) {
            return Ok(prepared);
        }
        std::fs::create_dir_all(&self.config.work_dir)?;
        let work = tempfile::Builder::new().prefix("reel-job-").tempdir_in(&self.config.work_dir)?;
        let extension = video.origin_object_key.rsplit('.').next().unwrap_or("bin");
        let source = work.path().join(format!("source.{extension}"));
        self.storage.download(&Key::from(video.origin_object_key.as_str()), &source).await?;
        let probed = media::probe(&self.tools, &source, &self.limits(), self.config.probe_timeout).await?;
        Ok(Prepared { video_id: video.id, generation, work, source, probed })
    }
}
