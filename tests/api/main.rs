//! reel's integration suite: one binary, every scenario on SQLite+FS and PostgreSQL+S3.

mod helpers;

mod crash;
mod direct;
mod health;
mod memory;
mod pipeline;
mod playback;
mod uploads;
