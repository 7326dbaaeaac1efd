//! Cleanup after faults and after retention:
//! - scratch directories left in the work directory by a crashed worker are removed when a
//!   worker starts (those untouched for longer than the hard processing timeout: a live job
//!   writes to its directory far more often, so a directory shared with another process on the
//!   same machine is never taken from under it);
//! - once the retention period has passed, the raw source of a video that failed for good (not
//!   retryable) is deleted, and so are the packaged trees of generations a reprocess replaced
//!   (counted from the publication of the generation that replaced them).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use object_store::path::Path as Key;

use super::{Pipeline, PipelineError};
use crate::model::Generation;
use crate::storage::keys;

/// What a retention pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    /// Raw sources of videos that failed for good.
    pub sources: usize,
    /// Packaged trees of replaced generations.
    pub generations: usize,
}

/// Videos handled per retention pass.
const BATCH: i64 = 50;

impl Pipeline {
    /// Removes scratch directories (`reel-job-*`) untouched for longer than the processing
    /// timeout. Returns how many it removed.
    pub fn clear_orphaned_work(&self) -> std::io::Result<usize> {
        let entries = match std::fs::read_dir(&self.config.work_dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with("reel-job-") {
                continue;
            }
            let modified = entry.metadata()?.modified()?;
            let idle = SystemTime::now().duration_since(modified).unwrap_or(Duration::ZERO);
            if idle < self.config.processing_timeout {
                continue;
            }
            let path = entry.path();
            let cleared = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match cleared {
                Ok(()) => removed += 1,
                Err(err) => tracing::warn!(path = %path.display(), error = %err, "orphaned scratch not removed"),
            }
        }
        Ok(removed)
    }

    /// Deletes what the retention period no longer keeps (see the module docs). A video whose
    /// deletion fails is logged and tried again at the next pass.
    pub async fn expire_retained(&self, now: DateTime<Utc>) -> Result<RetentionReport, PipelineError> {
        let retention = chrono::Duration::from_std(self.config.retention).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = now.checked_sub_signed(retention) else {
            return Ok(RetentionReport::default());
        };
        let mut report = RetentionReport::default();
        for (video_id, key) in self.db.expired_sources(cutoff, BATCH).await? {
            match self.storage.delete(&Key::from(key.as_str())).await {
                Ok(()) => {
                    self.db.mark_source_deleted(video_id, now).await?;
                    report.sources += 1;
                }
                Err(err) => tracing::warn!(%video_id, error = %err, "retained source not deleted yet"),
            }
        }
        for (video_id, below, current) in self.db.replaced_generations(cutoff, BATCH).await? {
            let mut pruned = true;
            for generation in below.get()..current.get() {
                let generation = Generation::new(generation);
                let root = keys::packaged_root(video_id, generation);
                // Generation 1's root holds the later generations' roots (`g2/`, …): keep those.
                let deleted = self.storage.delete_tree_except(&root, keys::is_generation_dir).await;
                if let Err(err) = deleted {
                    tracing::warn!(%video_id, %generation, error = %err, "replaced generation not deleted yet");
                    pruned = false;
                    break;
                }
                report.generations += 1;
            }
            if pruned {
                self.db.mark_pruned(video_id, current).await?;
            }
        }
        Ok(report)
    }
}
