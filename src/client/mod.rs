//! The reel upload client: a typed HTTP client, resumable parallel part uploads, and polling
//! until the pipeline is done. The `reel upload|status|feed` commands are built on it.
//!
//! | module | job |
//! |---|---|
//! | [`http`] | [`ReelClient`]: one typed method per API call |
//! | [`model`] | request and answer types |
//! | [`upload`] | [`Uploader`]: the `created → uploading → processing → ready \| failed` machine |
//! | [`parts`] | part ranges, reading one part (seek + take) |
//! | [`retry`] | exponential backoff with jitter, transient-error retry loop |
//! | [`state`] | resume state files |
//! | [`error`] | [`ClientError`] |
//! | [`commands`] | the `reel upload`, `status` and `feed` commands |
//! | [`progress`] | progress bar, or plain lines when stderr is not a terminal |

pub mod commands;
pub mod error;
pub mod http;
pub mod model;
pub mod parts;
pub mod progress;
pub mod retry;
pub mod state;
pub mod upload;

pub use error::ClientError;
pub use http::ReelClient;
pub use state::StateStore;
pub use upload::{UploadEvent, UploadOptions, UploadOutcome, UploadPhase, Uploader, Waited};
