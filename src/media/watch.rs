//! Reporting finished files while ffmpeg is still writing the ladder.
//!
//! In VOD mode ffmpeg writes the playlists only at the end. With `-hls_flags temp_file`, ffmpeg
//! 5.1 writes each segment as `seg-NNNNN.m4s.tmp` and renames it when complete (checked with
//! strace), so a segment under its final name is complete. `init.mp4` is written directly, but
//! before the first segment is opened by the same muxer, so it is complete once segment 1 is.
//! Segments are reported in order, each once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::Sender;

use super::error::MediaError;

/// Init segment name inside every rendition directory.
pub(crate) const INIT_NAME: &str = "init.mp4";

/// `seg-00001.m4s` → 1.
pub(crate) fn segment_number(name: &str) -> Option<u32> {
    name.strip_prefix("seg-")?.strip_suffix(".m4s")?.parse().ok()
}

/// Per-directory progress of what has been reported.
struct Progress {
    dir: PathBuf,
    init_sent: bool,
    next_segment: u32,
}

/// Watches rendition directories and sends each file once it is complete.
pub(crate) struct SegmentWatcher {
    dirs: Vec<Progress>,
    sink: Sender<PathBuf>,
}

impl SegmentWatcher {
    pub(crate) fn new(dirs: impl IntoIterator<Item = PathBuf>, sink: Sender<PathBuf>) -> Self {
        let dirs = dirs.into_iter().map(|dir| Progress { dir, init_sent: false, next_segment: 1 }).collect();
        Self { dirs, sink }
    }

    /// Send every segment (and, before the first, the init segment) now complete on disk.
    pub(crate) async fn poll(&mut self) -> Result<(), MediaError> {
        for progress in &mut self.dirs {
            let present = list_segments(&progress.dir).await?;
            while present.contains(&progress.next_segment) {
                send_next(progress, &self.sink).await;
            }
        }
        Ok(())
    }

    /// Report a file written after ffmpeg exited (a rewritten playlist).
    pub(crate) async fn send(&self, path: PathBuf) {
        deliver(&self.sink, path).await;
    }
}

async fn send_next(progress: &mut Progress, sink: &Sender<PathBuf>) {
    if !progress.init_sent {
        deliver(sink, progress.dir.join(INIT_NAME)).await;
        progress.init_sent = true;
    }
    let name = format!("seg-{:05}.m4s", progress.next_segment);
    deliver(sink, progress.dir.join(name)).await;
    progress.next_segment += 1;
}

/// A receiver that went away does not stop the encode; the caller still gets the full output.
async fn deliver(sink: &Sender<PathBuf>, path: PathBuf) {
    if let Err(unsent) = sink.send(path).await {
        tracing::debug!(path = %unsent.0.display(), "segment receiver gone");
    }
}

async fn list_segments(dir: &Path) -> Result<BTreeSet<u32>, MediaError> {
    let context = || format!("listing {}", dir.display());
    let mut entries = tokio::fs::read_dir(dir).await.map_err(MediaError::io(context()))?;
    let mut numbers = BTreeSet::new();
    while let Some(entry) = entries.next_entry().await.map_err(MediaError::io(context()))? {
        if let Some(n) = entry.file_name().to_str().and_then(segment_number) {
            numbers.insert(n);
        }
    }
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_parse() {
        assert_eq!(segment_number("seg-00012.m4s"), Some(12));
        assert_eq!(segment_number("seg-00012.m4s.tmp"), None);
        assert_eq!(segment_number("init.mp4"), None);
    }

    #[tokio::test]
    async fn reports_renamed_segments_in_order_once() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let mut watcher = SegmentWatcher::new([tmp.path().to_path_buf()], tx);
        std::fs::write(tmp.path().join(INIT_NAME), b"i")?;
        std::fs::write(tmp.path().join("seg-00001.m4s.tmp"), b"1")?;
        watcher.poll().await?;
        assert!(rx.try_recv().is_err());
        std::fs::rename(tmp.path().join("seg-00001.m4s.tmp"), tmp.path().join("seg-00001.m4s"))?;
        watcher.poll().await?;
        assert_eq!(rx.try_recv()?, tmp.path().join(INIT_NAME));
        assert_eq!(rx.try_recv()?, tmp.path().join("seg-00001.m4s"));
        std::fs::write(tmp.path().join("seg-00002.m4s"), b"2")?;
        watcher.poll().await?;
        watcher.poll().await?;
        assert_eq!(rx.try_recv()?, tmp.path().join("seg-00002.m4s"));
        assert!(rx.try_recv().is_err());
        Ok(())
    }
}
