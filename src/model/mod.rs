//! The domain model: the ground floor every other layer builds on.
//!
//! It imports nothing of reel's own: ids, the video and upload entities with their typed states,
//! jobs of the processing queue, the value score and the event envelope. Storage, database, media
//! and the services above them all speak these types; mapping to and from rows, keys and HTTP
//! bodies happens at each of those boundaries.

pub mod delivery;
pub mod event;
pub mod failure;
pub mod ids;
pub mod job;
pub mod quota;
pub mod score;
pub mod upload;
pub mod user;
pub mod video;

pub use delivery::{CacheTier, PlaybackAccess, VideoPolicy};
pub use event::{EventType, OutboxEvent};
pub use failure::FailureReason;
pub use ids::{Generation, UploadId, VideoId};
pub use job::{Job, JobStatus, NewJob, Stage};
pub use quota::{Quota, QuotaExceeded};
pub use upload::{StoredPart, UploadSession, UploadStatus};
pub use user::{AuthUser, InvalidUserId, Role, UserId};
pub use video::{Video, VideoStatus};
