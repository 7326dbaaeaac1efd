//! Reporting finished files while ffmpeg is still writing the ladder.
//!
//! In VOD mode ffmpeg writes the playlists only at the end. With `-hls_flags temp_file`, ffmpeg
//! 5.1 writes each segment as `seg-NNNNN.m4s.tmp` and renames it when complete (checked with
//! strace), so a segment under its final name is complete. `init.mp4` is written directly, but
//! before the first segment is opened by the same muxer, so it is complete once segment 1 is.
//! Segments are reported in order, each once.
//!
//! A separate audio track is written as 1 s pieces (`piece-NNNNN.m4s`): the watcher joins the
//! pieces of each grid segment into `seg-NNNNN.m4s` (one `styp`, no `sidx`, the pieces'
//! `moof`/`mdat` pairs in order), reports it, and deletes the pieces.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::Sender;

use super::error::MediaError;
use super::ladder::SegmentGrid;
use super::mp4::join_fragments;
use super::output::SegmentStat;
use super::playlist::parse_media_playlist;

/// Init segment name inside every rendition directory.
pub(crate) const INIT_NAME: &str = "init.mp4";
/// File name pattern of the 1 s pieces of a separate audio track.
pub(crate) const PIECE_TEMPLATE: &str = "piece-%05d.m4s";
/// ffmpeg's playlist of those pieces (read for their durations, then deleted).
pub(crate) const PIECES_PLAYLIST: &str = "pieces.m3u8";

/// `seg-00001.m4s` → 1.
pub(crate) fn segment_number(name: &str) -> Option<u32> {
    name.strip_prefix("seg-")?.strip_suffix(".m4s")?.parse().ok()
}

fn piece_number(name: &str) -> Option<u32> {
    name.strip_prefix("piece-")?.strip_suffix(".m4s")?.parse().ok()
}

fn segment_name(number: u32) -> String {
    format!("seg-{number:05}.m4s")
}

fn piece_name(number: u32) -> String {
    format!("piece-{number:05}.m4s")
}

/// One directory to watch and how ffmpeg fills it.
pub(crate) struct WatchedDir {
    dir: PathBuf,
    /// `Some` for a separate audio track: pieces to join on this grid.
    grid: Option<SegmentGrid>,
    init_sent: bool,
    next_segment: u32,
    /// Joined segments so far: (first piece, last piece, bytes).
    joined: Vec<(u32, u32, u64)>,
    /// Durations of the joined segments, known once ffmpeg has written its pieces playlist.
    stats: Vec<SegmentStat>,
}

impl WatchedDir {
    /// A rendition whose segments ffmpeg cuts itself.
    pub(crate) fn segments(dir: PathBuf) -> Self {
        Self { dir, grid: None, init_sent: false, next_segment: 1, joined: Vec::new(), stats: Vec::new() }
    }

    /// An audio track written as 1 s pieces, joined here into segments on `grid`.
    pub(crate) fn pieces(dir: PathBuf, grid: SegmentGrid) -> Self {
        Self { grid: Some(grid), ..Self::segments(dir) }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Pieces of segment `number` (1-based): `(first, last)` piece numbers.
    fn pieces_of(grid: &SegmentGrid, number: u32) -> (u32, u32) {
        let index = number.saturating_sub(1) as usize;
        (grid.boundary(index) + 1, grid.boundary(index + 1))
    }
}

/// Watches rendition directories and sends each file once it is complete.
pub(crate) struct SegmentWatcher {
    dirs: Vec<WatchedDir>,
    sink: Sender<PathBuf>,
}

impl SegmentWatcher {
    pub(crate) fn new(dirs: impl IntoIterator<Item = WatchedDir>, sink: Sender<PathBuf>) -> Self {
        Self { dirs: dirs.into_iter().collect(), sink }
    }

    /// Send every segment (and, before the first, the init segment) now complete on disk.
    pub(crate) async fn poll(&mut self) -> Result<(), MediaError> {
        for watched in &mut self.dirs {
            poll_dir(watched, &self.sink, false).await?;
        }
        Ok(())
    }

    /// After ffmpeg exited: send what is left, joining the last partial segment of each audio
    /// track, and learn the joined segments' durations from ffmpeg's pieces playlist.
    pub(crate) async fn finish(&mut self) -> Result<(), MediaError> {
        for watched in &mut self.dirs {
            poll_dir(watched, &self.sink, true).await?;
            if watched.grid.is_some() {
                watched.stats = joined_stats(watched).await?;
            }
        }
        Ok(())
    }

    /// The joined segments of the audio track in `dir` (after [`finish`](Self::finish)).
    pub(crate) fn joined(&self, dir: &Path) -> &[SegmentStat] {
        self.dirs.iter().find(|w| w.dir == dir).map_or(&[], |w| w.stats.as_slice())
    }

    /// Report a file written after ffmpeg exited (a rewritten playlist).
    pub(crate) async fn send(&self, path: PathBuf) {
        deliver(&self.sink, path).await;
    }
}

async fn poll_dir(watched: &mut WatchedDir, sink: &Sender<PathBuf>, ended: bool) -> Result<(), MediaError> {
    let listing = list_dir(&watched.dir).await?;
    match watched.grid.clone() {
        None => {
            while listing.segments.contains(&watched.next_segment) {
                let path = watched.dir.join(segment_name(watched.next_segment));
                send_next(watched, sink, path).await;
            }
        }
        Some(grid) => loop {
            let (first, last) = WatchedDir::pieces_of(&grid, watched.next_segment);
            let available = (first..=last).take_while(|n| listing.pieces.contains(n)).count();
            let complete = available == (first..=last).count();
            let last = match (complete, ended && available > 0) {
                (true, _) => last,
                (false, true) => first + u32::try_from(available).unwrap_or(0) - 1,
                (false, false) => break,
            };
            let path = join(&watched.dir, watched.next_segment, first, last).await?;
            let bytes = tokio::fs::metadata(&path).await.map_err(MediaError::io("reading a joined segment"))?.len();
            watched.joined.push((first, last, bytes));
            send_next(watched, sink, path).await;
            if !complete {
                break;
            }
        },
    }
    Ok(())
}

async fn send_next(watched: &mut WatchedDir, sink: &Sender<PathBuf>, path: PathBuf) {
    if !watched.init_sent {
        deliver(sink, watched.dir.join(INIT_NAME)).await;
        watched.init_sent = true;
    }
    deliver(sink, path).await;
    watched.next_segment += 1;
}

/// Joins pieces `first..=last` into segment `number` (written whole, then renamed) and deletes
/// them.
async fn join(dir: &Path, number: u32, first: u32, last: u32) -> Result<PathBuf, MediaError> {
    let mut pieces = Vec::new();
    for piece in first..=last {
        let path = dir.join(piece_name(piece));
        pieces.push(tokio::fs::read(&path).await.map_err(MediaError::io(format!("reading {}", path.display())))?);
    }
    let joined = join_fragments(&pieces).map_err(|e| MediaError::invalid_output(format!("{}: {e}", dir.display())))?;
    let path = dir.join(segment_name(number));
    let staging = dir.join(format!("{}.tmp", segment_name(number)));
    tokio::fs::write(&staging, joined).await.map_err(MediaError::io(format!("writing {}", staging.display())))?;
    tokio::fs::rename(&staging, &path).await.map_err(MediaError::io(format!("renaming {}", staging.display())))?;
    for piece in first..=last {
        let piece = dir.join(piece_name(piece));
        tokio::fs::remove_file(&piece).await.map_err(MediaError::io(format!("removing {}", piece.display())))?;
    }
    Ok(path)
}

/// Each joined segment's duration: the sum of its pieces' EXTINF in ffmpeg's playlist, which is
/// then deleted (reel writes the track's own `index.m3u8`).
async fn joined_stats(watched: &WatchedDir) -> Result<Vec<SegmentStat>, MediaError> {
    let path = watched.dir.join(PIECES_PLAYLIST);
    let text = tokio::fs::read_to_string(&path).await.map_err(MediaError::io(format!("reading {}", path.display())))?;
    let pieces =
        parse_media_playlist(&text).map_err(|e| MediaError::invalid_output(format!("{}: {e}", path.display())))?;
    let duration_of = |number: u32| pieces.iter().find(|(_, uri)| piece_number(uri) == Some(number)).map(|(d, _)| *d);
    let mut stats = Vec::with_capacity(watched.joined.len());
    for (index, (first, last, bytes)) in watched.joined.iter().enumerate() {
        let duration = (*first..=*last)
            .map(duration_of)
            .sum::<Option<f64>>()
            .ok_or_else(|| MediaError::invalid_output(format!("{}: a piece is not listed", path.display())))?;
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        stats.push(SegmentStat { uri: segment_name(number), duration, bytes: *bytes });
    }
    tokio::fs::remove_file(&path).await.map_err(MediaError::io(format!("removing {}", path.display())))?;
    Ok(stats)
}

/// A receiver that went away does not stop the encode; the caller still gets the full output.
async fn deliver(sink: &Sender<PathBuf>, path: PathBuf) {
    if let Err(unsent) = sink.send(path).await {
        tracing::debug!(path = %unsent.0.display(), "segment receiver gone");
    }
}

/// Complete segments and pieces in a directory, by number.
#[derive(Default)]
struct Listing {
    segments: BTreeSet<u32>,
    pieces: BTreeSet<u32>,
}

async fn list_dir(dir: &Path) -> Result<Listing, MediaError> {
    let context = || format!("listing {}", dir.display());
    let mut entries = tokio::fs::read_dir(dir).await.map_err(MediaError::io(context()))?;
    let mut listing = Listing::default();
    while let Some(entry) = entries.next_entry().await.map_err(MediaError::io(context()))? {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if let Some(n) = segment_number(&name) {
            listing.segments.insert(n);
        } else if let Some(n) = piece_number(&name) {
            listing.pieces.insert(n);
        }
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_parse() {
        assert_eq!(segment_number("seg-00012.m4s"), Some(12));
        assert_eq!(segment_number("seg-00012.m4s.tmp"), None);
        assert_eq!(segment_number("init.mp4"), None);
        assert_eq!(piece_number("piece-00003.m4s"), Some(3));
        assert_eq!(piece_number("piece-00003.m4s.tmp"), None);
    }

    #[test]
    fn pieces_map_onto_the_grid() {
        let grid = SegmentGrid { ramp: vec![1, 2], length: 4 };
        let groups: Vec<(u32, u32)> = (1..=4).map(|n| WatchedDir::pieces_of(&grid, n)).collect();
        assert_eq!(groups, [(1, 1), (2, 3), (4, 7), (8, 11)]);
    }

    #[tokio::test]
    async fn reports_renamed_segments_in_order_once() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let mut watcher = SegmentWatcher::new([WatchedDir::segments(tmp.path().to_path_buf())], tx);
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
