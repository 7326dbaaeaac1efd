//! Container detection from the first bytes of an upload. The result names the source object's
//! extension; the client's filename and content type are never trusted for it. Anything
//! unrecognised is stored as `bin` and left for the pipeline's probe to reject.

/// Bytes needed for a confident answer (three MPEG-TS packets).
pub const SNIFF_LEN: u64 = 564;

/// The extension of the container `head` starts with.
pub fn extension(head: &[u8]) -> &'static str {
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return if &head[8..12] == b"qt  " { "mov" } else { "mp4" };
    }
    if head.len() >= 8 && matches!(&head[4..8], b"moov" | b"mdat" | b"wide" | b"free") {
        return "mov";
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return if head.windows(4).any(|w| w == b"webm") { "webm" } else { "mkv" };
    }
    if head.len() >= 377 && [0, 188, 376].iter().all(|&i| head[i] == 0x47) {
        return "ts";
    }
    "bin"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_iso_bmff_brands() {
        assert_eq!(extension(b"\0\0\0\x20ftypisom\0\0\x02\0"), "mp4");
        assert_eq!(extension(b"\0\0\0\x14ftypqt  \0\0\x02\0"), "mov");
    }

    #[test]
    fn detects_matroska_and_webm() {
        let mut webm = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x84];
        webm.extend_from_slice(b"webm");
        assert_eq!(extension(&webm), "webm");
        assert_eq!(extension(&[0x1A, 0x45, 0xDF, 0xA3, 0x42, 0x82, 0x88]), "mkv");
    }

    #[test]
    fn detects_mpeg_ts_by_sync_bytes() {
        let mut ts = vec![0u8; 564];
        for i in [0, 188, 376] {
            ts[i] = 0x47;
        }
        assert_eq!(extension(&ts), "ts");
    }

    #[test]
    fn anything_else_is_bin() {
        assert_eq!(extension(b"#EXTM3U\n#EXT-X-VERSION:3\n"), "bin");
        assert_eq!(extension(b""), "bin");
    }
}
