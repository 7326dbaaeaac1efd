//! The one error type of the media engine.

use std::path::PathBuf;
use std::time::Duration;

/// Why a media operation failed: either the upload is unacceptable (`Rejected`) or something
/// went wrong around it (everything else).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Deterministic: the upload itself is unacceptable; `reason` is specific and human readable.
    #[error("upload rejected: {reason}")]
    Rejected {
        /// What is wrong with the upload, e.g. "audio only" or "unsupported container: hls".
        reason: String,
    },
    /// A tool ran past its wall-clock budget and was killed.
    #[error("{command} timed out after {after:?} and was killed")]
    TimedOut {
        /// The command that was killed.
        command: String,
        /// The budget it exceeded.
        after: Duration,
    },
    /// A tool could not be started; `message` says what to fix.
    #[error("{message}")]
    Spawn {
        /// The program that failed to start.
        program: PathBuf,
        /// Actionable description, e.g. "ffmpeg not found at /usr/bin/ffmpeg".
        message: String,
        /// The underlying OS error.
        #[source]
        source: std::io::Error,
    },
    /// Local file-system or pipe I/O failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the engine was doing.
        context: String,
        /// The underlying OS error.
        #[source]
        source: std::io::Error,
    },
    /// A tool exited unsuccessfully.
    #[error("{command} failed ({status}): {stderr_tail}")]
    Failed {
        /// The command that failed.
        command: String,
        /// Its exit status.
        status: String,
        /// The last few KiB of its stderr.
        stderr_tail: String,
    },
    /// ffmpeg succeeded but its output breaks the packaging rules (a bug, not the upload's fault).
    #[error("invalid packaged output: {reason}")]
    InvalidOutput {
        /// Which rule the output breaks.
        reason: String,
    },
}

impl MediaError {
    /// Whether running the same job again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Rejected { .. } | Self::InvalidOutput { .. } => false,
            Self::TimedOut { .. } | Self::Spawn { .. } | Self::Io { .. } | Self::Failed { .. } => true,
        }
    }

    pub(crate) fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected { reason: reason.into() }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    pub(crate) fn invalid_output(reason: impl Into<String>) -> Self {
        Self::InvalidOutput { reason: reason.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_infrastructure_errors_are_retryable() {
        assert!(!MediaError::rejected("audio only").is_retryable());
        assert!(!MediaError::invalid_output("avc3").is_retryable());
        let timed_out = MediaError::TimedOut { command: "ffmpeg (transcode)".into(), after: Duration::from_secs(1) };
        assert!(timed_out.is_retryable());
        assert!(timed_out.to_string().contains("ffmpeg (transcode)"));
    }
}
