//! Validation of a new upload and its part plan (pure; no I/O).
//!
//! Each string rule is one regular expression, used both to check requests and as the
//! `pattern` of the OpenAPI schema, so the document states exactly what is enforced.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::{Object, Type};

use super::{IngestError, RegisterPart};
use crate::config::UploadsConfig;

/// S3's part-count ceiling.
pub const MAX_PARTS: u64 = 10_000;

/// Longest `filename`, in characters.
pub const MAX_FILENAME_CHARS: usize = 255;

/// A display name: no control characters, not blank.
pub const FILENAME_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";

/// Longest `content_type`, in bytes (it is ASCII).
pub const MAX_CONTENT_TYPE_LEN: usize = 255;

/// `video/*` or `application/octet-stream` (any case), with at most four `name=value`
/// parameters whose values are tokens or quoted strings (RFC 9110 §8.3.1).
pub const CONTENT_TYPE_PATTERN: &str = concat!(
    r"^(?:[Vv][Ii][Dd][Ee][Oo]/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}",
    r"|[Aa][Pp][Pp][Ll][Ii][Cc][Aa][Tt][Ii][Oo][Nn]/[Oo][Cc][Tt][Ee][Tt]-[Ss][Tt][Rr][Ee][Aa][Mm])",
    r#"(?:[ \t]*;[ \t]*[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}=(?:[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}|"[ !#-\[\]-~]{0,64}")){0,4}$"#,
);

/// A SHA-256 in hex, either case.
pub const SHA256_HEX_PATTERN: &str = "^[0-9A-Fa-f]{64}$";

/// A part's ETag as the bucket answered it, quoted or not: 1-128 visible ASCII characters.
pub const ETAG_PATTERN: &str = r#"^"?[!#-~]{1,128}"?$"#;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|err| panic!("built-in pattern {pattern:?} does not compile: {err}"))
}

static FILENAME: LazyLock<Regex> = LazyLock::new(|| regex(FILENAME_PATTERN));
static CONTENT_TYPE: LazyLock<Regex> = LazyLock::new(|| regex(CONTENT_TYPE_PATTERN));
static SHA256_HEX: LazyLock<Regex> = LazyLock::new(|| regex(SHA256_HEX_PATTERN));
static ETAG: LazyLock<Regex> = LazyLock::new(|| regex(ETAG_PATTERN));

/// A string schema with a pattern and length bounds (for `#[schema(schema_with = ...)]`).
fn string_schema(pattern: &str, min: usize, max: usize, description: &str) -> Object {
    Object::builder()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(description))
        .build()
}

fn filename_schema() -> Object {
    let description = "Display name of the file: 1-255 characters, not blank, no control characters.";
    string_schema(FILENAME_PATTERN, 1, MAX_FILENAME_CHARS, description)
}

fn content_type_schema() -> Object {
    let description =
        "Media type: `video/*` or `application/octet-stream`, with at most four parameters; at most 255 bytes.";
    string_schema(CONTENT_TYPE_PATTERN, 7, MAX_CONTENT_TYPE_LEN, description)
}

/// An optional hex SHA-256: a string of 64 hex digits, or null.
fn optional_sha256(description: &str) -> Object {
    let mut schema = string_schema(SHA256_HEX_PATTERN, 64, 64, description);
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    schema
}

fn sha256_schema() -> Object {
    optional_sha256("SHA-256 of the whole file, 64 hex digits.")
}

/// The schema of a part's optional `sha256`.
pub fn part_sha256_schema() -> Object {
    optional_sha256("SHA-256 of the part, 64 hex digits.")
}

/// The schema of a part's `etag`.
pub fn etag_schema() -> Object {
    string_schema(ETAG_PATTERN, 1, 130, "The ETag the bucket answered for the part, with or without its quotes.")
}

/// The body of `POST /v1/videos/uploads`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUpload {
    /// Display name of the file.
    #[schema(schema_with = filename_schema)]
    pub filename: String,
    /// Media type.
    #[schema(schema_with = content_type_schema)]
    pub content_type: String,
    /// Total size in bytes, at most the server's `uploads.max_size_bytes`.
    #[schema(minimum = 1)]
    pub size_bytes: u64,
    /// Optional whole-file SHA-256, hex.
    #[schema(schema_with = sha256_schema)]
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
    if request.filename.chars().count() > MAX_FILENAME_CHARS || !FILENAME.is_match(&request.filename) {
        return Err(invalid(
            "invalid_filename",
            "filename must be 1-255 characters, not blank, without control characters",
        ));
    }
    if request.content_type.len() > MAX_CONTENT_TYPE_LEN || !CONTENT_TYPE.is_match(&request.content_type) {
        return Err(invalid(
            "unsupported_content_type",
            "content_type must be video/* or application/octet-stream with at most four parameters, at most 255 bytes",
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
    if request.sha256.as_deref().is_some_and(|sha| !SHA256_HEX.is_match(sha)) {
        return Err(invalid("invalid_checksum", "sha256 must be 64 hexadecimal characters"));
    }
    let part_size = part_size_for(request.size_bytes, limits.part_size_bytes);
    let part_count = u32::try_from(request.size_bytes.div_ceil(part_size))
        .map_err(|_| invalid("upload_too_large", "too many parts"))?;
    Ok(UploadPlan {
        filename: request.filename.trim().to_owned(),
        content_type: request.content_type.to_ascii_lowercase(),
        size_bytes: request.size_bytes,
        sha256: request.sha256.map(|sha| sha.to_ascii_lowercase()),
        part_size,
        part_count,
    })
}

/// Checks the shape of a part registration: 1 to 10,000 parts, each with a well-formed ETag
/// and, when given, a hex SHA-256. Whether the bucket holds them is checked afterwards.
pub fn check_registration(parts: &[RegisterPart]) -> Result<(), IngestError> {
    if parts.is_empty() || parts.len() as u64 > MAX_PARTS {
        return Err(invalid("invalid_parts", "parts must hold 1 to 10000 entries"));
    }
    for part in parts {
        let n = part.part_number;
        if !ETAG.is_match(&part.etag) {
            return Err(invalid("invalid_etag", format!("part {n}: etag is not a well-formed entity tag")));
        }
        if part.sha256.as_deref().is_some_and(|sha| !SHA256_HEX.is_match(sha)) {
            return Err(invalid("invalid_checksum", format!("part {n}: sha256 must be 64 hexadecimal characters")));
        }
    }
    Ok(())
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
