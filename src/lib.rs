//! reel: a video ingest and delivery service.
//!
//! A creator's upload arrives in parts ([`ingest`]), is assembled once into the origin
//! ([`storage`]) and recorded with its outbox event ([`db`]); background workers take it from
//! there: the [`pipeline`] probes, transcodes and packages it into an HLS/CMAF ladder. The HTTP
//! surface lives in [`api`].
//!
//! | module | job |
//! |---|---|
//! | [`model`] | the ground floor: typed ids, entities, states, jobs, events, the value score |
//! | [`backoff`] | exponential backoff with equal jitter |
//! | [`media`] | the media engine: probe, ladder, one-process transcode, playlists, posters |
//! | [`config`] | layered, typed configuration |
//! | [`storage`] | object store facade and the one key layout |
//! | [`db`] | metadata store facade (SQLite, PostgreSQL), rows mapped to model types |
//! | [`telemetry`] | logs and metrics |
//! | [`ingest`] | upload sessions, parts, completion, expiry |
//! | [`pipeline`] | outbox relay, job queue, probe → transcode → publish_ready |
//! | [`delivery`] | playback and feed views, delivery policy, origin with hot tier, beacon |
//! | [`events`] | events out: envelopes, signed webhooks with retries, the NATS JetStream sink |
//! | [`api`] | route table, one handler module per resource, auth, the error → HTTP mapping |
//! | [`app`] | wiring: state, listener, background tasks, shutdown |
//! | [`client`] | upload client: resumable parallel parts, retries, polling until ready |
//! | [`cli`] | the `reel` command line |
//!
//! Each module uses only modules listed before it, never one on its own row or after it
//! (`tests/api/layers.rs` checks it).

pub mod api;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod delivery;
pub mod events;
pub mod ingest;
pub mod media;
pub mod model;
pub mod pipeline;
pub mod storage;
pub mod telemetry;
