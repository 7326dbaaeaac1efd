//! reel: a video ingest and delivery service.
//!
//! A creator's upload arrives in parts ([`ingest`]), is assembled once into the origin
//! ([`storage`]) and recorded with its outbox event ([`db`]); background workers take it from
//! there: the [`pipeline`] probes, transcodes and packages it into an HLS/CMAF ladder. The HTTP
//! surface lives in [`api`].
//!
//! | module | job |
//! |---|---|
//! | [`cli`] | the `reel` command line |
//! | [`client`] | upload client: resumable parallel parts, retries, polling until ready |
//! | [`app`] | wiring: state, listener, workers, shutdown |
//! | [`config`] | layered, typed configuration |
//! | [`api`] | route table and one handler module per resource |
//! | [`auth`] | bearer JWTs and the caller extractor |
//! | [`error`] | the one mapping from errors to HTTP answers |
//! | [`ingest`] | upload sessions, parts, completion, expiry |
//! | [`delivery`] | playback and feed views, delivery policy, origin with hot tier, beacon |
//! | [`pipeline`] | outbox relay, job queue, probe → transcode → publish_ready, media engine |
//! | [`storage`] | object store facade and key layout |
//! | [`db`] | metadata store facade (SQLite, PostgreSQL) |
//! | [`video`] | the video asset entity |
//! | [`telemetry`] | logs and metrics |

pub mod api;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod delivery;
pub mod ingest;
pub mod media;
pub mod model;
pub mod pipeline;
pub mod storage;
pub mod telemetry;
