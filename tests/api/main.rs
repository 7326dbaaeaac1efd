//! reel's integration suite: one binary, every scenario on SQLite+FS and PostgreSQL+S3.

mod helpers;

mod beacon;
mod cli;
mod crash;
mod direct;
mod health;
mod media;
mod memory;
mod origin;
mod pipeline;
mod playable;
mod playback;
mod uploads;
