//! Errors of the upload client, and which of them are worth retrying.

use std::path::PathBuf;
use std::time::Duration;

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// reel answered with an error body (`{"error":{code,message}}`) or an unexpected status.
    #[error("server answered {status} {code}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// The error's stable code, e.g. `checksum_mismatch`.
        code: String,
        /// The server's message.
        message: String,
        /// The `Retry-After` the server asked for, if any.
        retry_after: Option<Duration>,
    },
    /// The request did not get an answer (connect error, reset, timeout) or the body was unreadable.
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server's answer lacked something the contract promises.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// Reading the file to upload failed.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file changed while it was being uploaded.
    #[error("{path} changed during the upload; start again")]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// The resume state could not be read or written.
    #[error("resume state {path}: {message}")]
    State {
        /// The state file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// No directory to keep resume state in (neither `$XDG_STATE_HOME` nor `$HOME` is set).
    #[error("no state directory: set REEL_CLIENT_STATE_DIR, XDG_STATE_HOME or HOME")]
    NoStateDir,
    /// The upload was stopped by the caller; the session stays open and resumable.
    #[error("upload {upload_id} interrupted")]
    Interrupted {
        /// The resumable session.
        upload_id: String,
    },
    /// Waiting for processing was stopped by the caller; the video keeps processing.
    #[error("stopped waiting; video {video_id} keeps processing (see `reel status {video_id}`)")]
    WaitInterrupted {
        /// The video.
        video_id: String,
    },
    /// Processing did not finish within the allowed time.
    #[error("video {video_id} still processing after {waited:?}")]
    WaitTimeout {
        /// The video.
        video_id: String,
        /// How long the client waited.
        waited: Duration,
    },
}

impl ClientError {
    /// Whether trying again may succeed: transport failures, `5xx` and `429`.
    /// Any other `4xx` is the server refusing the request itself, so it is final.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport(error) => !(error.is_builder() || error.is_decode() || error.is_redirect()),
            ClientError::Api { status, .. } => *status == 429 || (500..600).contains(status),
            _ => false,
        }
    }

    /// The delay the server asked for before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The stable error code when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> ClientError {
        ClientError::Api { status, code: "x".into(), message: "m".into(), retry_after: None }
    }

    #[test]
    fn server_errors_and_throttling_are_transient_other_refusals_are_final() {
        for status in [429, 500, 502, 503, 504] {
            assert!(api(status).is_transient(), "{status}");
        }
        for status in [400, 401, 404, 409, 422] {
            assert!(!api(status).is_transient(), "{status}");
        }
        assert!(!ClientError::Interrupted { upload_id: "u".into() }.is_transient());
    }
}
