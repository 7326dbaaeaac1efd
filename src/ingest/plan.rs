//! Validation of a new upload and its part plan (pure; no I/O).

use serde::Deserialize;

use super::IngestError;
use crate::config::UploadsConfig;

/// S3's part-count ceiling.
pub const MAX_PARTS: u64 = 10_000;

/// The body of `POST /v1/videos/uploads`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUpload {
    /// Display name of the file.
    pub filename: String,
    /// MIME type; must be `video/*`.
    pub content_type: String,
    /// Total size in bytes.
    pub size_bytes: u64,
    /// Optional whole-file SHA-256, hex.
    pub sha256: Option<String>,
}

/// A validated request with its part layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPlan {
    /// Trimmed display name.
    pub filename: String,
    /// Lower-cased MIME type.
    pub content_type: String,
    /// Total size.
    pub size_bytes: u64,
    /// Lower-cased whole-file SHA-256.
    pub sha256: Option<String>,
    /// Size of every part but the last.
    pub part_size: u64,
    /// Number of parts.
    pub part_count: u32,
}

fn invalid(code: &'static str, message: impl Into<String>) -> IngestError {
    IngestError::Invalid { code, message: message.into() }
}

/// Validates `request` against the limits and lays out its parts: the configured part size,
/// grown to the next MiB when the file would otherwise need more than 10,000 parts.
pub fn plan(request: CreateUpload, limits: &UploadsConfig) -> Result<UploadPlan, IngestError> {
    let filename = request.filename.trim().to_owned();
    if filename.is_empty() || filename.len() > 255 || filename.chars().any(char::is_control) {
        return Err(invalid("invalid_filename", "filename must be 1-255 characters without control characters"));
    }
    let content_type = request.content_type.trim().to_ascii_lowercase();
    if !is_video_type(&content_type) {
        return Err(invalid(
            "unsupported_content_type",
            format!("content_type must be a video type, got {content_type:?}"),
        ));
    }
    if request.size_bytes == 0 {
        return Err(invalid("invalid_size", "size_bytes must be greater than 0"));
    }
    if request.size_bytes > limits.max_size_bytes {
        return Err(invalid(
            "upload_too_large",
            format!("size_bytes {} exceeds the limit of {} bytes", request.size_bytes, limits.max_size_bytes),
        ));
    }
    let sha256 = request.sha256.map(|s| s.trim().to_ascii_lowercase());
    if sha256.as_ref().is_some_and(|s| s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(invalid("invalid_checksum", "sha256 must be 64 hexadecimal characters"));
    }
    let part_size = part_size_for(request.size_bytes, limits.part_size_bytes);
    let part_count = u32::try_from(request.size_bytes.div_ceil(part_size))
        .map_err(|_| invalid("upload_too_large", "too many parts"))?;
    Ok(UploadPlan { filename, content_type, size_bytes: request.size_bytes, sha256, part_size, part_count })
}

fn is_video_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence
        .strip_prefix("video/")
        .is_some_and(|sub| !sub.is_empty() && sub.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)))
}

fn part_size_for(size: u64, preferred: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    preferred.max(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(size: u64) -> CreateUpload {
        CreateUpload {
            filename: "clip.mov".into(),
            content_type: "video/quicktime".into(),
            size_bytes: size,
            sha256: None,
        }
    }

    fn code(err: IngestError) -> &'static str {
        match err {
            IngestError::Invalid { code, .. } => code,
            _ => "other",
        }
    }

    #[test]
    fn splits_into_parts_of_the_configured_size() {
        let limits = UploadsConfig::default();
        let plan = plan(request(20 << 20), &limits).expect("valid");
        assert_eq!((plan.part_size, plan.part_count), (8 << 20, 3));
    }

    #[test]
    fn grows_parts_to_stay_within_ten_thousand() {
        let limits = UploadsConfig { max_size_bytes: 200 << 30, ..Default::default() };
        let plan = plan(request(100 << 30), &limits).expect("valid");
        assert!(u64::from(plan.part_count) <= MAX_PARTS);
        assert_eq!(plan.part_size % (1 << 20), 0);
    }

    #[test]
    fn refuses_bad_requests_with_specific_codes() {
        let limits = UploadsConfig::default();
        assert_eq!(code(plan(request(0), &limits).unwrap_err()), "invalid_size");
        assert_eq!(code(plan(request(5 << 30), &limits).unwrap_err()), "upload_too_large");
        let audio = CreateUpload { content_type: "audio/mpeg".into(), ..request(10) };
        assert_eq!(code(plan(audio, &limits).unwrap_err()), "unsupported_content_type");
        let bad_sha = CreateUpload { sha256: Some("xyz".into()), ..request(10) };
        assert_eq!(code(plan(bad_sha, &limits).unwrap_err()), "invalid_checksum");
        let blank = CreateUpload { filename: "  ".into(), ..request(10) };
        assert_eq!(code(plan(blank, &limits).unwrap_err()), "invalid_filename");
    }
}
