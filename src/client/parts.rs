//! Part layout and reading one part from the file (seek + take; never the whole file).

use std::io::SeekFrom;
use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::error::ClientError;

/// The byte range of part `part_number` (1-based) of a `size`-byte file cut into `part_size`
/// parts, or `None` when there is no such part.
pub fn part_range(part_number: u32, part_size: u64, size: u64) -> Option<Range<u64>> {
    let start = u64::from(part_number.checked_sub(1)?).checked_mul(part_size)?;
    (part_size > 0 && start < size).then(|| start..size.min(start.saturating_add(part_size)))
}

/// One part read into memory, with its SHA-256.
#[derive(Debug, Clone)]
pub struct PartData {
    /// The bytes.
    pub bytes: Bytes,
    /// Lowercase hex SHA-256 of `bytes`.
    pub sha256: String,
}

/// Reads `range` of the file at `path`. A short read means the file shrank: [`ClientError::FileChanged`].
pub async fn read_part(path: &Path, range: Range<u64>) -> Result<PartData, ClientError> {
    let file_error = |source| ClientError::File { path: path.to_owned(), source };
    let mut file = tokio::fs::File::open(path).await.map_err(file_error)?;
    file.seek(SeekFrom::Start(range.start)).await.map_err(file_error)?;
    let len = range.end - range.start;
    let mut buffer = Vec::with_capacity(usize::try_from(len).unwrap_or_default());
    file.take(len).read_to_end(&mut buffer).await.map_err(file_error)?;
    if buffer.len() as u64 != len {
        return Err(ClientError::FileChanged { path: path.to_owned() });
    }
    let sha256 = hex::encode(Sha256::digest(&buffer));
    Ok(PartData { bytes: Bytes::from(buffer), sha256 })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn parts_tile_the_file_and_the_last_one_is_short() {
        assert_eq!(part_range(1, 10, 25), Some(0..10));
        assert_eq!(part_range(2, 10, 25), Some(10..20));
        assert_eq!(part_range(3, 10, 25), Some(20..25));
        assert_eq!(part_range(4, 10, 25), None);
        assert_eq!(part_range(3, 10, 30), Some(20..30));
        assert_eq!(part_range(0, 10, 25), None);
        assert_eq!(part_range(1, 0, 25), None);
        assert_eq!(part_range(u32::MAX, u64::MAX, u64::MAX), None);
    }

    #[tokio::test]
    async fn a_part_is_read_from_its_offset_and_hashed() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"0123456789abcdef").unwrap();
        let part = read_part(file.path(), 10..16).await.unwrap();
        assert_eq!(&part.bytes[..], b"abcdef");
        assert_eq!(part.sha256, hex::encode(Sha256::digest(b"abcdef")));
        let past_the_end = read_part(file.path(), 10..20).await;
        assert!(matches!(past_the_end, Err(ClientError::FileChanged { .. })));
    }
}
