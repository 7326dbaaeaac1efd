//! Configuration: defaults, then a TOML file, then `REEL_SECTION__KEY` environment variables,
//! then command-line flags (flags win). `reel config` prints the effective result.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::media::{LadderConfig, Tools};
use crate::model::PlaybackAccess;
use crate::model::score::ScoreWeights;

/// A secret value: never printed by `Debug` or by `reel config`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

/// Everything reel reads at start-up.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Metadata store.
    pub database: DatabaseConfig,
    /// Object store.
    pub storage: StorageConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Upload sessions.
    pub uploads: UploadsConfig,
    /// Per-user quotas.
    pub quotas: QuotasConfig,
    /// External media tools (`[media] ffmpeg`, `ffprobe`: `REEL_MEDIA__FFMPEG`, …).
    pub media: Tools,
    /// Processing pipeline.
    pub pipeline: PipelineConfig,
    /// Playback, feed, policy and origin.
    pub delivery: DeliveryConfig,
    /// Logging.
    pub log: LogConfig,
    /// Event export and the NATS JetStream sink.
    pub events: EventsConfig,
    /// Webhook delivery.
    pub webhooks: WebhooksConfig,
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Listen address. `REEL_SERVER__BIND`.
    pub bind: SocketAddr,
    /// Base URL clients reach this server at, used in part URLs; defaults to `http://{bind}`.
    /// `REEL_SERVER__PUBLIC_URL`.
    pub public_url: Option<String>,
    /// The built web app, served at `/`. `REEL_SERVER__WEB_DIR`.
    pub web_dir: PathBuf,
    /// A connection that has not sent a request's complete headers by then is closed.
    /// `REEL_SERVER__HEADER_READ_TIMEOUT`.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Requests handled at once by this process; more get `503` with `Retry-After`.
    /// `REEL_SERVER__MAX_CONCURRENT_REQUESTS`.
    pub max_concurrent_requests: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            web_dir: PathBuf::from("./web/dist"),
            header_read_timeout: Duration::from_secs(10),
            max_concurrent_requests: 1024,
        }
    }
}

/// `[database]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (embedded default) or `postgres://…`. `REEL_DATABASE__URL`. Its password
    /// is redacted wherever the URL is shown.
    #[serde(serialize_with = "serialize_redacted")]
    pub url: String,
    /// Pool size. `REEL_DATABASE__MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://./data/reel.db".into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Which object store backs the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// Local filesystem under `local_root` (embedded default).
    Local,
    /// An S3-compatible bucket.
    S3,
}

/// `[storage]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `local` or `s3`. `REEL_STORAGE__BACKEND`.
    pub backend: StorageBackend,
    /// Root directory of the local backend. `REEL_STORAGE__LOCAL_ROOT`.
    pub local_root: PathBuf,
    /// Lifetime of presigned part URLs (15 minutes; a client asks `GET` on the session for fresh
    /// ones). `REEL_STORAGE__PRESIGN_TTL`.
    #[serde(with = "humantime_serde")]
    pub presign_ttl: Duration,
    /// S3 settings, required when `backend = "s3"`.
    pub s3: Option<S3Config>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Local,
            local_root: PathBuf::from("./data/objects"),
            presign_ttl: Duration::from_secs(15 * 60),
            s3: None,
        }
    }
}

/// `[storage.s3]`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct S3Config {
    /// e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// Signing region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Bucket name.
    pub bucket: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret key. `REEL_STORAGE__S3__SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most self-hosted servers.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// Hand clients presigned URLs so parts go straight to the bucket.
    #[serde(default = "default_true")]
    pub direct_uploads: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_true() -> bool {
    true
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// HS256 secret. `REEL_AUTH__JWT_SECRET`. When unset, read from `jwt_secret_file`.
    pub jwt_secret: Option<Secret>,
    /// File holding the secret; created with a random secret when missing.
    pub jwt_secret_file: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { jwt_secret: None, jwt_secret_file: PathBuf::from("./data/jwt-secret") }
    }
}

/// `[uploads]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UploadsConfig {
    /// Largest accepted upload. `REEL_UPLOADS__MAX_SIZE_BYTES`.
    pub max_size_bytes: u64,
    /// Preferred part size (grown when a file would need more than 10,000 parts).
    pub part_size_bytes: u64,
    /// How long a session may stay open.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// How often the sweeper looks for expired sessions.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// A part body that sends nothing for this long is cut off and not stored.
    /// `REEL_UPLOADS__PART_IDLE_TIMEOUT`.
    #[serde(with = "humantime_serde")]
    pub part_idle_timeout: Duration,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        UploadsConfig {
            max_size_bytes: 4 << 30,
            part_size_bytes: 8 << 20,
            session_ttl: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(60),
            part_idle_timeout: Duration::from_secs(30),
        }
    }
}

/// `[quotas]`: per-user limits, counted in the database so every `serve` process agrees.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotasConfig {
    /// Upload sessions a user may hold open at once. `REEL_QUOTAS__OPEN_UPLOADS`.
    pub open_uploads: u64,
    /// Bytes a user's open sessions may reserve together. `REEL_QUOTAS__RESERVED_BYTES`.
    pub reserved_bytes: u64,
    /// Uploads a user may complete per rolling hour. `REEL_QUOTAS__COMPLETED_PER_HOUR`.
    pub completed_per_hour: u64,
    /// Videos of one user processing at once. `REEL_QUOTAS__PROCESSING_VIDEOS`.
    pub processing_videos: u64,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        QuotasConfig { open_uploads: 10, reserved_bytes: 20 << 30, completed_per_hour: 60, processing_videos: 5 }
    }
}

/// `[pipeline]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineConfig {
    /// Concurrent jobs per process (`0`: this process runs no pipeline jobs).
    /// `REEL_PIPELINE__WORKERS`.
    pub workers: usize,
    /// Idle poll interval of a worker.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Job lease; renewed every third of it while the job runs.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// A job in flight at shutdown gets this long to finish.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Hard limit from completion to ready (seed §5.4). `REEL_PIPELINE__PROCESSING_TIMEOUT`.
    #[serde(with = "humantime_serde")]
    pub processing_timeout: Duration,
    /// Attempts per stage before the video fails (transient errors only).
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_backoff_max: Duration,
    /// Wall-clock limit of ffprobe runs and the poster.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
    /// The transcode may take this many times the source duration…
    pub transcode_timeout_factor: f64,
    /// …but never less than this.
    #[serde(with = "humantime_serde")]
    pub transcode_timeout_min: Duration,
    /// Scratch space for sources and encodes.
    pub work_dir: PathBuf,
    /// How long the raw source of a video that failed for good, and the packaged trees of
    /// generations a reprocess replaced, are kept before deletion. `REEL_PIPELINE__RETENTION`.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Longest accepted source.
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// Largest accepted side in pixels.
    pub max_side: u32,
    /// The ABR ladder.
    pub ladder: LadderConfig,
    /// Weights of `video_value_score`.
    pub score: ScoreWeights,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 1,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            processing_timeout: Duration::from_secs(30 * 60),
            max_attempts: 3,
            retry_backoff: Duration::from_secs(2),
            retry_backoff_max: Duration::from_secs(300),
            probe_timeout: Duration::from_secs(30),
            transcode_timeout_factor: 10.0,
            transcode_timeout_min: Duration::from_secs(120),
            work_dir: std::env::temp_dir().join("reel-work"),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_duration: Duration::from_secs(600),
            max_side: 4096,
            ladder: LadderConfig::default(),
            score: ScoreWeights::default(),
        }
    }
}

/// `[delivery]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryConfig {
    /// Base URL of the origin as clients see it (a CDN in front); defaults to
    /// `{server public URL}/origin`. `REEL_DELIVERY__PUBLIC_BASE_URL`.
    pub public_base_url: Option<String>,
    /// Feed autoplay ceiling by short side (720 = 720p). Admins can change it at runtime.
    pub feed_max_short_side: u32,
    /// The token `cohort` claim of low-conversion viewers.
    pub low_conversion_cohort: String,
    /// Ceiling for that cohort (540 = 540p).
    pub low_conversion_max_short_side: u32,
    /// Upcoming videos a client may prefetch (seed §5.1).
    pub prefetch_cap: u32,
    /// `max-age` of playlists of ready videos.
    #[serde(with = "humantime_serde")]
    pub playlist_max_age: Duration,
    /// Bytes the in-memory hot tier keeps. `REEL_DELIVERY__HOT_TIER_BYTES`.
    pub hot_tier_bytes: u64,
    /// Origins allowed by CORS (`*` for any).
    pub cors_allowed_origins: Vec<String>,
    /// Value score from which a video is `hot`.
    pub hot_score: f64,
    /// Value score from which a video is `warm`.
    pub warm_score: f64,
    /// Beacon events a viewer may send per minute.
    pub beacon_events_per_minute: u32,
    /// How long a client should wait before polling a processing video again.
    #[serde(with = "humantime_serde")]
    pub poll_after: Duration,
    /// Playback access of videos without their own policy: `public` or `signed`.
    pub playback: PlaybackAccess,
    /// Lifetime of a signed playback token (it must cover watching the video).
    #[serde(with = "humantime_serde")]
    pub playback_token_ttl: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            public_base_url: None,
            feed_max_short_side: 720,
            low_conversion_cohort: "low_conversion".into(),
            low_conversion_max_short_side: 540,
            prefetch_cap: 2,
            playlist_max_age: Duration::from_secs(60),
            hot_tier_bytes: 256 << 20,
            cors_allowed_origins: vec!["*".into()],
            hot_score: 0.6,
            warm_score: 0.3,
            beacon_events_per_minute: 600,
            poll_after: Duration::from_secs(2),
            playback: PlaybackAccess::Public,
            playback_token_ttl: Duration::from_secs(3600),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `text` or `json`. `REEL_LOG__FORMAT`.
    pub format: LogFormat,
    /// `tracing` filter, e.g. `info,reel=debug`. `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Text, filter: "info".into() }
    }
}

/// `[events]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsConfig {
    /// NATS server for the JetStream sink, e.g. `nats://127.0.0.1:4222`; unset: no sink.
    /// `REEL_EVENTS__NATS_URL`.
    pub nats_url: Option<String>,
    /// The JetStream stream, created when missing, over `{nats_subject_prefix}.>`.
    pub nats_stream: String,
    /// Subjects are `{nats_subject_prefix}.{type}`, e.g. `reel.events.video.ready`.
    pub nats_subject_prefix: String,
    /// How long the stream keeps a message.
    #[serde(with = "humantime_serde")]
    pub nats_max_age: Duration,
    /// How often idle exporters look for new outbox events.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            nats_url: None,
            nats_stream: "REEL_EVENTS".into(),
            nats_subject_prefix: "reel.events".into(),
            nats_max_age: Duration::from_secs(7 * 24 * 3600),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// `[webhooks]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhooksConfig {
    /// Concurrent deliveries per worker process (`0`: this process sends none).
    pub workers: usize,
    /// Attempts per delivery before it is `failed`.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Limit of one attempt (connect, send, answer).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Lease of a claimed delivery; must exceed `timeout`.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// An endpoint failing without a success for this long is disabled.
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// How long a rotated-out secret keeps signing beside the new one.
    #[serde(with = "humantime_serde")]
    pub rotation_overlap: Duration,
    /// Accept endpoints on loopback, private and link-local addresses (SSRF guard off).
    /// `REEL_WEBHOOKS__ALLOW_PRIVATE_TARGETS`.
    pub allow_private_targets: bool,
    /// How often idle delivery workers look for due deliveries.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            workers: 4,
            max_attempts: 10,
            backoff: Duration::from_secs(600),
            backoff_max: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            rotation_overlap: Duration::from_secs(24 * 3600),
            allow_private_targets: false,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Errors loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A provider failed or a value has the wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    OutOfRange(String),
    /// The JWT secret file could not be read or created.
    #[error("cannot read or create the JWT secret file {path:?}: {source}")]
    SecretFile { path: PathBuf, source: std::io::Error },
    /// The JWT secret is empty or too short to resist guessing.
    #[error(
        "the JWT secret {0} is shorter than {MIN_SECRET_BYTES} bytes; use a random one, e.g. `openssl rand -hex 32`"
    )]
    WeakSecret(String),
}

/// Shortest JWT secret accepted (HS256 needs at least the hash's 32 bytes).
pub const MIN_SECRET_BYTES: usize = 32;

/// S3's multipart limits.
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's largest single part.
pub const MAX_PART_SIZE: u64 = 5 << 30;

impl Config {
    /// Layers defaults, the optional TOML `file`, the environment, and flag `overrides`.
    pub fn load(file: Option<&Path>, overrides: Figment) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config =
            figment.merge(Env::prefixed("REEL_").split("__")).merge(overrides).extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let part = self.uploads.part_size_bytes;
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part) {
            return Err(ConfigError::OutOfRange(format!("uploads.part_size_bytes = {part}: S3 needs 5 MiB to 5 GiB")));
        }
        if self.storage.backend == StorageBackend::S3 && self.uploads.max_size_bytes > MAX_PART_SIZE {
            return Err(ConfigError::OutOfRange(
                "uploads.max_size_bytes above 5 GiB is not supported on S3 (server-side copy limit)".into(),
            ));
        }
        if self.webhooks.lease <= self.webhooks.timeout || self.webhooks.max_attempts == 0 {
            return Err(ConfigError::OutOfRange(
                "webhooks.lease must exceed webhooks.timeout; max_attempts ≥ 1".into(),
            ));
        }
        Ok(())
    }

    /// The base URL for links to this server.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.bind),
        }
    }

    /// The JWT secret: configured, or read from (and on first use written to) the secret file.
    /// A secret shorter than [`MIN_SECRET_BYTES`] (an empty file included) is refused.
    pub fn jwt_secret(&self) -> Result<Secret, ConfigError> {
        if let Some(secret) = &self.auth.jwt_secret {
            return strong(secret.clone(), "in auth.jwt_secret");
        }
        let path = &self.auth.jwt_secret_file;
        let io = |source| ConfigError::SecretFile { path: path.clone(), source };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                create_secret_file(path).map_err(io)?
            }
            Err(e) => return Err(io(e)),
        };
        strong(Secret::new(text.trim()), &format!("in {}", path.display()))
    }
}

fn strong(secret: Secret, origin: &str) -> Result<Secret, ConfigError> {
    if secret.expose().len() < MIN_SECRET_BYTES {
        return Err(ConfigError::WeakSecret(origin.to_owned()));
    }
    Ok(secret)
}

/// Creates the secret file atomically: a random secret written and synced to a private temp
/// file beside it, then linked into place, so no process ever reads it empty. When another
/// process won the race, its secret is the one returned.
#[cfg(unix)]
fn create_secret_file(path: &Path) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let temp = path.with_extension(format!("tmp-{}", hex::encode(rand::random::<[u8; 8]>())));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
    let linked =
        file.write_all(secret.as_bytes()).and_then(|()| file.sync_all()).and_then(|()| std::fs::hard_link(&temp, path));
    std::fs::remove_file(&temp)?;
    match linked {
        Ok(()) => Ok(secret),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(path),
        Err(e) => Err(e),
    }
}

/// `url` with any password replaced by `[redacted]` (for `reel config`, logs and errors).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.to_owned(),
    }
}

fn serialize_redacted<S: serde::Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(path: &Path) -> Config {
        let mut config = Config::default();
        config.auth.jwt_secret_file = path.to_owned();
        config
    }

    #[test]
    fn short_or_empty_secrets_are_refused() {
        let mut config = Config::default();
        config.auth.jwt_secret = Some(Secret::new("too-short"));
        assert!(matches!(config.jwt_secret(), Err(ConfigError::WeakSecret(_))));
        config.auth.jwt_secret = Some(Secret::new("x".repeat(MIN_SECRET_BYTES)));
        assert!(config.jwt_secret().is_ok());

        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("jwt-secret");
        std::fs::write(&path, "\n").expect("write");
        assert!(matches!(with_file(&path).jwt_secret(), Err(ConfigError::WeakSecret(_))), "an empty file");
    }

    #[test]
    fn the_secret_file_is_created_once_privately_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("nested/jwt-secret");
        let first = with_file(&path).jwt_secret().expect("created");
        assert!(first.expose().len() >= MIN_SECRET_BYTES);
        assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        assert_eq!(with_file(&path).jwt_secret().expect("read").expose(), first.expose());
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir")).expect("list").collect();
        assert_eq!(names.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn concurrent_creators_agree_on_one_secret() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("jwt-secret");
        let secrets: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| with_file(&path).jwt_secret().expect("secret").expose().to_owned()))
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert!(secrets.iter().all(|s| s == &secrets[0] && s.len() >= MIN_SECRET_BYTES), "{secrets:?}");
    }

    #[test]
    fn the_database_password_is_redacted_everywhere_it_is_shown() {
        let mut config = Config::default();
        config.database.url = "postgres://reel:hunter2@db.internal:5432/reel".into();
        let shown = toml::to_string_pretty(&config).expect("toml");
        assert!(
            !shown.contains("hunter2") && shown.contains("postgres://reel:[redacted]@db.internal:5432/reel"),
            "{shown}"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(redact_url("sqlite://./data/reel.db"), "sqlite://./data/reel.db");
        assert!(!redact_url("postgres://u:p@ss w@h/db").contains("p@ss"));
    }
}
