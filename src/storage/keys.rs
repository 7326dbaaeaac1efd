//! The origin's fixed key layout (seed §3.2), in both directions: every key reel writes is built
//! here, and every packaged path the origin serves is parsed here.
//!
//! ```text
//! raw/{creator_id}/{video_id}/source.{ext}          the upload, stored once
//! packaged/{video_id}/hls/master.m3u8               written last, so it never points at missing files
//! packaged/{video_id}/hls/{rendition}/index.m3u8
//! packaged/{video_id}/hls/{rendition}/init.mp4
//! packaged/{video_id}/hls/{rendition}/seg-*.m4s
//! packaged/{video_id}/hls/audio/…                   the audio rendition, same shape
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

use crate::model::{Generation, UploadId, UserId, VideoId};

/// The multivariant playlist of a generation.
pub const MASTER_PLAYLIST: &str = "master.m3u8";
/// A rendition's media playlist.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
/// A rendition's init segment (`EXT-X-MAP`).
pub const INIT_SEGMENT: &str = "init.mp4";
/// A rendition's first media segment.
pub const FIRST_SEGMENT: &str = "seg-00001.m4s";
/// The poster image of a generation.
pub const POSTER: &str = "poster.jpg";
/// The directory of the audio rendition, beside the video renditions.
pub const AUDIO_RENDITION: &str = "audio";

/// Where a completed upload's source lives. `ext` comes from the detected container.
pub fn source(creator: &UserId, video_id: VideoId, ext: &str) -> Path {
    Path::from(format!("raw/{creator}/{video_id}/source.{ext}"))
}

/// The directory holding a video's source (whatever its extension).
pub fn source_dir(creator: &UserId, video_id: VideoId) -> Path {
    Path::from(format!("raw/{creator}/{video_id}"))
}

/// Root of a generation's packaged tree. Generation 1 uses the seed's layout exactly; a
/// reprocess publishes under `g{n}/`, so segment URLs (cached as immutable) never change meaning.
pub fn packaged_root(video_id: VideoId, generation: Generation) -> Path {
    let root = Path::from(format!("packaged/{video_id}/hls"));
    if generation <= Generation::FIRST { root } else { root.child(format!("g{generation}")) }
}

/// A generation's multivariant playlist.
pub fn master(video_id: VideoId, generation: Generation) -> Path {
    packaged_root(video_id, generation).child(MASTER_PLAYLIST)
}

/// A generation's poster image.
pub fn poster(video_id: VideoId, generation: Generation) -> Path {
    packaged_root(video_id, generation).child(POSTER)
}

/// The directory of one rendition (`360p`, [`AUDIO_RENDITION`], …) of a generation.
pub fn rendition_dir(video_id: VideoId, generation: Generation, rendition: &str) -> Path {
    packaged_root(video_id, generation).child(rendition)
}

/// A rendition's media playlist.
pub fn media_playlist(video_id: VideoId, generation: Generation, rendition: &str) -> Path {
    rendition_dir(video_id, generation, rendition).child(MEDIA_PLAYLIST)
}

/// The preview master of a phase-1 tree: the start rungs while they grow.
pub const PREVIEW_MASTER: &str = "preview.m3u8";

/// Where attempt `attempt` of phase 1 writes its start rungs, audio and masters. The first
/// attempt uses the generation's root; a restart after a crash writes beside it, so no URL a
/// viewer may already hold ever changes its bytes.
pub fn start_root(video_id: VideoId, generation: Generation, attempt: u32) -> Path {
    let root = packaged_root(video_id, generation);
    if attempt <= 1 { root } else { root.child(format!("e{attempt}")) }
}

/// Where attempt `attempt` of phase 2 writes the remaining rungs (same rule as [`start_root`]).
pub fn ladder_root(video_id: VideoId, generation: Generation, attempt: u32) -> Path {
    let root = packaged_root(video_id, generation);
    if attempt <= 1 { root } else { root.child(format!("l{attempt}")) }
}

/// The versioned master listing the whole ladder, written by attempt `attempt` of phase 2 at the
/// generation's root (a new URL: the start-rung master and its segments stay valid).
pub fn ladder_master(video_id: VideoId, generation: Generation, attempt: u32) -> Path {
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
pub fn staging_prefix(upload_id: UploadId) -> Path {
    Path::from(format!("staging/{upload_id}"))
}

/// A staged part on the local backend.
pub fn staged_part(upload_id: UploadId, part_number: u32) -> Path {
    staging_prefix(upload_id).child(format!("part-{part_number:05}"))
}

/// The multipart target of an S3-staged upload.
pub fn staged_source(upload_id: UploadId) -> Path {
    staging_prefix(upload_id).child("source")
}

/// A packaged object's place in the layout, parsed from a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackagedPath<'a> {
    /// The video.
    pub video_id: VideoId,
    /// The generation the object belongs to.
    pub generation: Generation,
    /// The rendition directory, or `None` for objects at the root of a generation or attempt
    /// (masters, poster).
    pub rendition: Option<&'a str>,
    /// The file name.
    pub file: &'a str,
}

impl PackagedPath<'_> {
    /// Whether the file is a multivariant playlist (the master or one of its capped variants).
    pub fn is_master(&self) -> bool {
        self.rendition.is_none() && self.file.ends_with(".m3u8")
    }
}

/// Parses `packaged/{uuid}/hls/[g{n}/][e{n}/|l{n}/][{rendition}/]{file}`, refusing anything
/// else: empty, dot-led or non-plain segments (so no traversal), other prefixes, `g1/`, `e1/` and
/// `l1/` (first runs have no directory of their own) and nesting deeper than one rendition
/// directory.
pub fn parse_packaged(path: &str) -> Option<PackagedPath<'_>> {
    let segments: Vec<&str> = path.split('/').collect();
    if !segments.iter().all(|s| is_plain(s)) {
        return None;
    }
    let [prefix, video, format, rest @ ..] = segments.as_slice() else {
        return None;
    };
    if *prefix != "packaged" || *format != "hls" {
        return None;
    }
    let video_id = video.parse().ok()?;
    let (generation, rest) = match rest {
        [dir, tail @ ..] if !tail.is_empty() && generation_dir(dir).is_some() => (generation_dir(dir)?, tail),
        _ => (Generation::FIRST, rest),
    };
    let rest = match rest {
        [dir, tail @ ..] if !tail.is_empty() && attempt_dir(dir) => tail,
        _ => rest,
    };
    let (rendition, file) = match rest {
        [file] => (None, *file),
        [rendition, file] => (Some(*rendition), *file),
        _ => return None,
    };
    Some(PackagedPath { video_id, generation, rendition, file })
}

/// `e{n}` or `l{n}` with n ≥ 2: a restarted phase 1 or phase 2 ([`start_root`], [`ladder_root`]).
fn attempt_dir(segment: &str) -> bool {
    segment
        .strip_prefix('e')
        .or_else(|| segment.strip_prefix('l'))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n >= 2)
}

/// `g{n}` with n ≥ 2.
fn generation_dir(segment: &str) -> Option<Generation> {
    let n: i64 = segment.strip_prefix('g')?.parse().ok()?;
    (n >= 2).then(|| Generation::new(n))
}

fn is_plain(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a22870-8813-73dd-b4cc-abd36a3d34eb";

    fn video() -> VideoId {
        ID.parse().expect("uuid")
    }

    #[test]
    fn layout_matches_the_seed() {
        let creator = UserId::parse("creator_1").expect("valid id");
        assert_eq!(source(&creator, video(), "mp4").as_ref(), format!("raw/creator_1/{ID}/source.mp4"));
        assert_eq!(master(video(), Generation::FIRST).as_ref(), format!("packaged/{ID}/hls/master.m3u8"));
        assert_eq!(
            media_playlist(video(), Generation::new(3), "360p").as_ref(),
            format!("packaged/{ID}/hls/g3/360p/index.m3u8")
        );
        let upload: UploadId = ID.parse().expect("uuid");
        assert_eq!(staged_part(upload, 7).as_ref(), format!("staging/{ID}/part-00007"));
    }

    #[test]
    fn every_built_packaged_key_parses_back() {
        for generation in [Generation::FIRST, Generation::new(2), Generation::new(17)] {
            let parsed = |key: Path| {
                let text = key.to_string();
                let p = parse_packaged(&text).map(|p| (p.video_id, p.generation, p.rendition.map(str::to_owned)));
                p.expect("parses")
            };
            assert_eq!(parsed(master(video(), generation)), (video(), generation, None));
            assert_eq!(parsed(poster(video(), generation)), (video(), generation, None));
            assert_eq!(
                parsed(media_playlist(video(), generation, AUDIO_RENDITION)),
                (video(), generation, Some("audio".to_owned()))
            );
            assert_eq!(
                parsed(rendition_dir(video(), generation, "720p").child(FIRST_SEGMENT)),
                (video(), generation, Some("720p".to_owned()))
            );
        }
    }

    #[test]
    fn only_plain_packaged_paths_parse() {
        let master = format!("packaged/{ID}/hls/master.m3u8");
        let parsed = parse_packaged(&master).expect("master parses");
        assert!(parsed.is_master());
        assert_eq!(parsed.file, MASTER_PLAYLIST);
        assert!(parse_packaged(&format!("packaged/{ID}/hls/g3/master.m3u8")).is_some_and(|p| p.is_master()));
        assert!(parse_packaged(&format!("packaged/{ID}/hls/720p/index.m3u8")).is_some_and(|p| !p.is_master()));
        for bad in [
            format!("packaged/{ID}/hls/../../raw/x/source.mp4"),
            format!("packaged/{ID}/hls/%2e%2e/master.m3u8"),
            format!("raw/alice/{ID}/source.mp4"),
            format!("packaged/{ID}/hls//master.m3u8"),
            format!("packaged/{ID}/hls/.hidden"),
            format!("packaged/{ID}/hls/g2/720p/extra/init.mp4"),
            format!("packaged/{ID}/hls/720p/extra/init.mp4"),
            "packaged/not-a-uuid/hls/master.m3u8".to_owned(),
            format!("packaged/{ID}/dash/master.m3u8"),
            format!("packaged/{ID}/hls"),
        ] {
            assert!(parse_packaged(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn restarts_and_the_ladder_write_beside_the_first_attempt() {
        let (video, first, g2, g3) = (video(), Generation::FIRST, Generation::new(2), Generation::new(3));
        let root = format!("packaged/{ID}/hls");
        assert_eq!(start_root(video, first, 1).as_ref(), root);
        assert_eq!(start_root(video, first, 2).as_ref(), format!("{root}/e2"));
        assert_eq!(start_root(video, g3, 2).as_ref(), format!("{root}/g3/e2"));
        assert_eq!(ladder_root(video, first, 1).as_ref(), root);
        assert_eq!(ladder_root(video, first, 3).as_ref(), format!("{root}/l3"));
        assert_eq!(ladder_master(video, first, 1).as_ref(), format!("{root}/master.v2.m3u8"));
        assert_eq!(ladder_master(video, g2, 2).as_ref(), format!("{root}/g2/master.v2-a2.m3u8"));
        for key in [
            start_root(video, g3, 2).child("360p").child(FIRST_SEGMENT),
            ladder_root(video, first, 3).child(MASTER_PLAYLIST),
        ] {
            let text = key.to_string();
            let parsed = parse_packaged(&text).expect("an attempt directory parses");
            assert_eq!(parsed.video_id, video);
        }
        let restarted = format!("{root}/g2/e3/360p/seg-00001.m4s");
        assert!(parse_packaged(&restarted).is_some_and(|p| p.generation == g2 && p.rendition == Some("360p")));
        assert!(parse_packaged(&format!("{root}/e2/preview.m3u8")).is_some_and(|p| p.is_master()));
        assert!(parse_packaged(&format!("{root}/e1/360p/index.m3u8")).is_none(), "attempt 1 has no directory");
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
