//! Metadata store: one facade over SQLite (embedded default) and PostgreSQL.
//!
//! Every query is written once, in SQL both engines accept (`$N` placeholders, portable types),
//! and [`with_pool!`] runs it on whichever engine the URL chose. The few statements that differ
//! (the job claim's `FOR UPDATE SKIP LOCKED`) match on [`Db`] explicitly. Migrations are embedded
//! per engine from `migrations/{sqlite,postgres}`.

mod beacon;
mod delivery;
mod jobs;
mod keys;
mod outbox;
mod quotas;
mod rows;
mod uploads;
mod videos;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

pub use beacon::ViewReport;
pub use delivery::{EngagementDelta, OpsVideoRow, PlaybackRow, StoredDefaults};
pub use keys::PlaybackKeyRow;
pub use outbox::{Export, RawEvent, StoredEvent};
pub use uploads::NewUploadSession;
pub use videos::{Failure, NewRendition, NewVideo, ProbeFacts, RenditionRow};
pub use webhooks::{AttemptResult, NewDelivery, WebhookDelivery, WebhookEndpoint};

/// Runs `$body` with `$pool` bound to the concrete pool of either engine.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached (connect, pool timeout, I/O): retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The request would exceed one of the user's quotas; nothing was changed.
    #[error("{0}")]
    Quota(crate::model::QuotaExceeded),
    /// The configured URL names no supported engine.
    #[error("unsupported database url {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => DbError::Unavailable(err),
            other => DbError::Query(other),
        }
    }
}

/// Connection settings for [`Db::connect`] (`Debug` redacts the URL's password).
#[derive(Clone)]
pub struct DbOptions {
    /// `sqlite://path` or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for DbOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbOptions")
            .field("url", &crate::config::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// The metadata store facade: a pool of one of the supported engines.
#[derive(Debug, Clone)]
pub enum Db {
    /// Embedded default.
    Sqlite(SqlitePool),
    /// Production backend shared by any number of `reel` processes.
    Postgres(PgPool),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Opens a pool for the engine named by the URL scheme. Connections are made lazily, so a
    /// database that is down at start-up is reported by `/readyz`, not by a crash.
    pub fn connect(options: &DbOptions) -> Result<Self, DbError> {
        let url = options.url.as_str();
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(options)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let connect = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_lazy_with(connect);
            Ok(Db::Postgres(pool))
        } else {
            Err(DbError::UnsupportedUrl(crate::config::redact_url(url)))
        }
    }

    fn connect_sqlite(options: &DbOptions) -> Result<Self, DbError> {
        let connect = SqliteConnectOptions::from_str(&options.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if let Some(parent) = connect.get_filename().parent() {
            std::fs::create_dir_all(parent).map_err(|e| DbError::Unavailable(e.into()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(Db::Sqlite(pool))
    }

    /// Applies the embedded migrations of this engine.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Round-trips a trivial query: the readiness check.
    pub async fn ping(&self) -> Result<(), DbError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await?.rows_affected());
        Ok(())
    }

    /// Short engine name for logs.
    pub fn engine(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool, waiting for checked-out connections.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}
