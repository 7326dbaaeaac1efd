//! The HTTP server loop and its limits: hyper's HTTP/1 connections with a header read timeout
//! and graceful shutdown, and a per-process limit on requests in flight that answers `503` with
//! `Retry-After` instead of queueing without bound.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api::error::ApiError;
use crate::config::ServerConfig;

/// Seconds a refused client is asked to wait.
const OVERLOAD_RETRY_SECS: u64 = 1;

/// Wraps `router` so that at most `max` requests run at once; the rest get `503` at once.
/// Liveness (`/healthz`) is always answered.
pub fn limit_concurrency(router: Router, max: usize) -> Router {
    let permits = Arc::new(Semaphore::new(max.max(1)));
    router.layer(axum::middleware::from_fn(move |request: Request, next: Next| {
        let permits = permits.clone();
        async move {
            if request.uri().path() == "/healthz" {
                return next.run(request).await;
            }
            match permits.try_acquire_owned() {
                Ok(_permit) => next.run(request).await,
                Err(_) => overloaded(),
            }
        }
    }))
}

fn overloaded() -> Response {
    metrics::counter!("http_requests_shed_total").increment(1);
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "the server is at its request limit, retry shortly")
        .retry_after(OVERLOAD_RETRY_SECS)
        .into_response()
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish. A connection that does not deliver a request's headers within
/// `server.header_read_timeout` is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
