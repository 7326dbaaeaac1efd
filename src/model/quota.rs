//! Per-user quotas: which one a request ran into, and when it may be tried again.

/// A per-user quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Upload sessions open at once.
    OpenUploads,
    /// Bytes reserved by open upload sessions (their declared sizes).
    ReservedBytes,
    /// Uploads completed within the last hour.
    CompletedPerHour,
    /// Videos currently processing.
    ProcessingVideos,
}

impl Quota {
    /// The stable name clients see in `error.details.quota`.
    pub fn as_str(self) -> &'static str {
        match self {
            Quota::OpenUploads => "open_uploads",
            Quota::ReservedBytes => "reserved_bytes",
            Quota::CompletedPerHour => "completed_uploads_per_hour",
            Quota::ProcessingVideos => "processing_videos",
        }
    }
}

/// A refusal because a request would exceed a quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The quota.
    pub quota: Quota,
    /// Its configured limit.
    pub limit: u64,
    /// What the user holds now (sessions, bytes, completions or videos).
    pub used: u64,
    /// Seconds after which the request may succeed, when the store can tell.
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.quota {
            Quota::OpenUploads => "open upload sessions",
            Quota::ReservedBytes => "bytes reserved by open upload sessions",
            Quota::CompletedPerHour => "uploads completed in the last hour",
            Quota::ProcessingVideos => "videos processing at once",
        };
        write!(f, "quota exceeded: at most {} {what} per user", self.limit)
    }
}
