//! reel's integration suite: one binary, every scenario on SQLite+FS and PostgreSQL+S3.

mod helpers;

mod access;
mod beacon;
mod cli;
mod contract;
mod crash;
mod direct;
mod events;
mod faults;
mod health;
mod layers;
mod limits;
mod media;
mod memory;
mod origin;
mod pipeline;
mod playable;
mod playback;
mod quotas;
mod uploads;
