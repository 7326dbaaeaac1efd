//! The origin's fixed key layout (seed §3.2).
//!
//! ```text
//! raw/{creator_id}/{video_id}/source.{ext}          the upload, stored once
//! packaged/{video_id}/hls/master.m3u8               written last, so it never points at missing files
//! packaged/{video_id}/hls/{rendition}/index.m3u8
//! packaged/{video_id}/hls/{rendition}/seg-*.m4s
//! packaged/{video_id}/hls/poster.jpg
//! packaged/{video_id}/hls/g{n}/…                     generation n ≥ 2 (a reprocess), same tree
//!
//! Inside a generation's tree (`{gen}` below), the two phases of the pipeline:
//! {gen}/{start rung}/…, {gen}/audio/…                 phase 1, first attempt: start rungs + audio
//! {gen}/preview.m3u8                                  phase 1: the preview master (start rungs)
//! {gen}/master.m3u8                                   phase 1 done: the ready master (start rungs)
//! {gen}/e{n}/…                                        phase 1, attempt n ≥ 2: the same, beside it
//! {gen}/{rung}/…                                      phase 2, first attempt: the remaining rungs
//! {gen}/l{n}/{rung}/…                                 phase 2, attempt n ≥ 2
//! {gen}/master.v2.m3u8, {gen}/master.v2-a{n}.m3u8     phase 2 done: the full ladder's master
//! {dir}/{master stem}~{N}p.m3u8                       a master capped at N p (served, not stored)
//! staging/{upload_id}/part-{n:05}                   parts of an open upload (local backend)
//! staging/{upload_id}/source                        multipart target of an open upload (S3 backend)
//! ```

use object_store::path::Path;
use uuid::Uuid;

use crate::model::UserId;

/// Where a completed upload's source lives. `ext` comes from the detected container.
pub fn source(creator: &UserId, video_id: Uuid, ext: &str) -> Path {
    Path::from(format!("raw/{creator}/{video_id}/source.{ext}"))
}

/// A rendition's init segment (`EXT-X-MAP`).
pub const INIT_SEGMENT: &str = "init.mp4";
/// A rendition's first media segment.
pub const FIRST_SEGMENT: &str = "seg-00001.m4s";

/// Root of a generation's packaged tree. Generation 1 uses the seed's layout exactly; a
/// reprocess publishes under `g{n}/`, so segment URLs (cached as immutable) never change meaning.
pub fn packaged_root(video_id: Uuid, generation: i64) -> Path {
    let root = Path::from(format!("packaged/{video_id}/hls"));
    if generation <= 1 { root } else { root.child(format!("g{generation}")) }
}

/// The preview master of a phase-1 tree: the start rungs while they grow.
pub const PREVIEW_MASTER: &str = "preview.m3u8";
/// The master of a finished phase-1 tree (the start rungs, measured).
pub const MASTER: &str = "master.m3u8";
/// A rendition's media playlist.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";

/// Where attempt `attempt` of phase 1 writes its start rungs, audio and masters. The first
/// attempt uses the generation's root; a restart after a crash writes beside it, so no URL a
/// viewer may already hold ever changes its bytes.
pub fn start_root(video_id: Uuid, generation: i64, attempt: u32) -> Path {
    let root = packaged_root(video_id, generation);
    if attempt <= 1 { root } else { root.child(format!("e{attempt}")) }
}

/// Where attempt `attempt` of phase 2 writes the remaining rungs (same rule as [`start_root`]).
pub fn ladder_root(video_id: Uuid, generation: i64, attempt: u32) -> Path {
    let root = packaged_root(video_id, generation);
    if attempt <= 1 { root } else { root.child(format!("l{attempt}")) }
}

/// The versioned master listing the whole ladder, written by attempt `attempt` of phase 2 at the
/// generation's root (a new URL: the start-rung master and its segments stay valid).
pub fn ladder_master(video_id: Uuid, generation: i64, attempt: u32) -> Path {
    let name = if attempt <= 1 { "master.v2.m3u8".to_owned() } else { format!("master.v2-a{attempt}.m3u8") };
    packaged_root(video_id, generation).child(name)
}

/// The file name of `master` capped at `cap` (short side): `master.v2.m3u8` → `master.v2~540p.m3u8`.
pub fn capped_master(master: &str, cap: u32) -> String {
    let stem = master.strip_suffix(".m3u8").unwrap_or(master);
    format!("{stem}~{cap}p.m3u8")
}

/// The inverse of [`capped_master`]: `master.v2~540p.m3u8` → (`master.v2.m3u8`, 540).
pub fn parse_capped_master(file: &str) -> Option<(String, u32)> {
    let (stem, rest) = file.split_once('~')?;
    let cap = rest.strip_suffix("p.m3u8")?.parse().ok().filter(|cap| *cap > 0)?;
    stem.starts_with("master").then(|| (format!("{stem}.m3u8"), cap))
}

/// The key of `file` in the directory of `key` (a sibling).
pub fn sibling(key: &str, file: &str) -> String {
    match key.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{file}"),
        None => file.to_owned(),
    }
}

/// Prefix holding everything staged for one upload session.
pub fn staging_prefix(upload_id: Uuid) -> Path {
    Path::from(format!("staging/{upload_id}"))
}

/// A staged part on the local backend.
pub fn staged_part(upload_id: Uuid, part_number: u32) -> Path {
    Path::from(format!("staging/{upload_id}/part-{part_number:05}"))
}

/// The multipart target of an S3-staged upload.
pub fn staged_source(upload_id: Uuid) -> Path {
    Path::from(format!("staging/{upload_id}/source"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_seed() {
        let creator = UserId::parse("creator_1").expect("valid id");
        let video = Uuid::nil();
        assert_eq!(
            source(&creator, video, "mp4").as_ref(),
            "raw/creator_1/00000000-0000-0000-0000-000000000000/source.mp4"
        );
        assert_eq!(staged_part(video, 7).as_ref(), "staging/00000000-0000-0000-0000-000000000000/part-00007");
    }

    #[test]
    fn restarts_and_the_ladder_write_beside_the_first_attempt() {
        let video = Uuid::nil();
        let root = "packaged/00000000-0000-0000-0000-000000000000/hls";
        assert_eq!(start_root(video, 1, 1).as_ref(), root);
        assert_eq!(start_root(video, 1, 2).as_ref(), format!("{root}/e2"));
        assert_eq!(start_root(video, 3, 2).as_ref(), format!("{root}/g3/e2"));
        assert_eq!(ladder_root(video, 1, 1).as_ref(), root);
        assert_eq!(ladder_root(video, 1, 3).as_ref(), format!("{root}/l3"));
        assert_eq!(ladder_master(video, 1, 1).as_ref(), format!("{root}/master.v2.m3u8"));
        assert_eq!(ladder_master(video, 2, 2).as_ref(), format!("{root}/g2/master.v2-a2.m3u8"));
    }

    #[test]
    fn capped_master_names_round_trip() {
        for master in ["master.m3u8", "master.v2.m3u8", "master.v2-a2.m3u8"] {
            let capped = capped_master(master, 540);
            assert_eq!(parse_capped_master(&capped), Some((master.to_owned(), 540)), "{capped}");
        }
        assert_eq!(capped_master("master.v2.m3u8", 360), "master.v2~360p.m3u8");
        assert_eq!(parse_capped_master("master.m3u8"), None);
        assert_eq!(parse_capped_master("master~0p.m3u8"), None);
        assert_eq!(parse_capped_master("preview~abcp.m3u8"), None);
        assert_eq!(parse_capped_master("index~540p.m3u8"), None);
        assert_eq!(sibling("a/b/master.m3u8", "master~540p.m3u8"), "a/b/master~540p.m3u8");
    }
}
