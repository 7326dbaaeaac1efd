//! Wiring: builds the shared state from configuration, binds the listener, starts the
//! background workers and runs until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::auth::Authenticator;
use crate::api::state::AppState;
use crate::config::Config;
use crate::db::{Db, DbOptions};
use crate::delivery::Delivery;
use crate::events::{self, Events};
use crate::ingest::{Ingest, sweeper};
use crate::pipeline::{Pipeline, worker};
use crate::storage::Storage;

/// Opens the database (and migrates it) and the object store.
pub async fn open_backends(config: &Config) -> anyhow::Result<(Db, Storage)> {
    let db = Db::connect(&DbOptions {
        url: config.database.url.clone(),
        max_connections: config.database.max_connections,
        acquire_timeout: config.database.acquire_timeout,
    })?;
    db.migrate().await?;
    tracing::info!(engine = db.engine(), "database migrated");
    let storage = Storage::open(&config.storage)?;
    tracing::info!(backend = ?config.storage.backend, "object store opened");
    Ok((db, storage))
}

/// Builds the shared state; `public_url` is where clients reach this server.
pub async fn state(config: &Config, public_url: String) -> anyhow::Result<AppState> {
    crate::telemetry::metrics();
    let (db, storage) = open_backends(config).await?;
    let auth = Authenticator::new(config.jwt_secret()?.expose().as_bytes());
    let delivery =
        Delivery::new(db.clone(), storage.clone(), config.delivery.clone(), config.pipeline.score, &public_url);
    delivery.keys().ensure_key().await?;
    let ingest = Ingest::new(db.clone(), storage.clone(), config.uploads.clone(), config.quotas.clone(), public_url);
    let worker_id = worker_id();
    let pipeline =
        Pipeline::new(db.clone(), storage.clone(), config.pipeline.clone(), config.media.clone(), worker_id.clone());
    let events =
        Events::new(db.clone(), config.events.clone(), config.webhooks.clone(), delivery.origin_url(), &worker_id);
    Ok(AppState { db, storage, ingest, pipeline, delivery, auth, readiness: Default::default(), events })
}

/// Names this process in job leases: host, pid and a random suffix.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "reel".into());
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[24..];
    format!("{}:{}:{suffix}", host.trim(), std::process::id())
}

/// The background tasks of a process, and the one shutdown sequence that ends them.
struct Background {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Background {
    /// Starts the upload sweeper and, when `workers`, the pipeline workers.
    fn start(state: &AppState, config: &Config, workers: bool) -> Self {
        let background = Background { token: CancellationToken::new(), tracker: TaskTracker::new() };
        if workers {
            let (tracker, token) = (&background.tracker, &background.token);
            tracker.spawn(sweeper::run(state.ingest.clone(), config.uploads.sweep_interval, token.clone()));
            for _ in 0..config.pipeline.workers {
                tracker.spawn(worker::run(state.pipeline.clone(), token.clone()));
            }
            if config.pipeline.workers > 0 {
                match state.pipeline.clear_orphaned_work() {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "orphaned scratch directories removed"),
                    Err(err) => tracing::warn!(error = %err, "orphaned scratch directories not checked"),
                }
                tracker.spawn(worker::listen(state.pipeline.clone(), token.clone()));
            }
            tracker.spawn(events::run(state.events.clone(), token.clone()));
            tracing::info!(pipeline_workers = config.pipeline.workers, "background workers started");
        }
        background
    }

    /// Cancels every task, waits for them to drain, then closes the database.
    async fn stop(self, state: &AppState) {
        self.token.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        state.db.close().await;
        tracing::info!("shutdown complete");
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    config: Config,
    workers: bool,
}

impl Application {
    /// Binds `config.server.bind` (port 0 picks a free port) and builds the state. Without a
    /// configured `public_url`, links point at the bound address.
    pub async fn build(config: Config, workers: bool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.server.bind).await?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening");
        let public_url = config.server.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let state = state(&config, public_url.trim_end_matches('/').to_owned()).await?;
        Ok(Application { listener, state, config, workers })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (tests use it to reach the database directly).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains requests and workers in order.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let background = Background::start(&self.state, &self.config, self.workers);
        let router = crate::api::router(self.state.clone(), &self.config);
        let stop = background.token.clone();
        let stopping = async move {
            shutdown.await;
            stop.cancel();
        };
        crate::api::serve::serve(self.listener, router, &self.config.server, stopping).await?;
        tracing::info!("http server stopped; draining workers");
        background.stop(&self.state).await;
        Ok(())
    }
}

/// Runs only the background workers until `shutdown` completes.
pub async fn run_workers(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let state = state(&config, config.public_url()).await?;
    let background = Background::start(&state, &config, true);
    shutdown.await;
    background.stop(&state).await;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
