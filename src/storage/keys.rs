//! The origin's fixed key layout (seed §3.2).
//!
//! ```text
//! raw/{creator_id}/{video_id}/source.{ext}          the upload, stored once
//! packaged/{video_id}/hls/master.m3u8               written last, so it never points at missing files
//! packaged/{video_id}/hls/{rendition}/index.m3u8
//! packaged/{video_id}/hls/{rendition}/seg-*.m4s
//! packaged/{video_id}/hls/poster.jpg
//! packaged/{video_id}/hls/g{n}/…                     generation n ≥ 2 (a reprocess), same tree
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
}
