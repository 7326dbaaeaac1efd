//! `GET /healthz` (the process is up) and `GET /readyz` (its dependencies answer).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::Serialize;
use tokio::sync::Mutex;
use utoipa::ToSchema;

use crate::api::state::AppState;

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// Readiness answer: `ready` or `unready`, and each check's result (`ok` or `unavailable`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(pattern = "^(ready|unready)$")]
    status: &'static str,
    checks: BTreeMap<&'static str, &'static str>,
}

/// Liveness: answers as long as the process serves HTTP.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", responses((status = 200, description = "the process serves", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// How long one readiness answer is reused: probes and load balancers may poll `/readyz` as
/// often as they like without each poll reaching the database, the store or ffmpeg.
const READINESS_TTL: Duration = Duration::from_secs(5);

/// The last readiness answer and when it was computed. Concurrent requests during a refresh
/// wait for the one refresh in flight.
#[derive(Debug, Clone, Default)]
pub struct ReadinessCache(Arc<Mutex<Option<(Instant, StatusCode, Readiness)>>>);

/// Readiness: the database and object store answer and ffmpeg/ffprobe run. 503 names the
/// failing checks with the fixed word `unavailable` (the cause goes to the log). The answer is
/// computed at most once every few seconds.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", responses((status = 200, description = "every dependency answers", body = Readiness), (status = 503, description = "some dependency does not; `checks` says which", body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let mut cached = state.readiness.0.lock().await;
    if let Some((at, status, answer)) = cached.as_ref() {
        if at.elapsed() < READINESS_TTL {
            return (*status, Json(answer.clone()));
        }
    }
    let (status, answer) = check(&state).await;
    *cached = Some((Instant::now(), status, answer.clone()));
    (status, Json(answer))
}

async fn check(state: &AppState) -> (StatusCode, Readiness) {
    let (db, storage, ffmpeg, ffprobe) = tokio::join!(
        state.db.ping(),
        state.storage.ping(),
        tool_runs(&state.pipeline.tools().ffmpeg),
        tool_runs(&state.pipeline.tools().ffprobe),
    );
    let mut checks = BTreeMap::new();
    checks.insert("database", db.map_err(|e| e.to_string()));
    checks.insert("object_store", storage.map_err(|e| e.to_string()));
    checks.insert("ffmpeg", ffmpeg);
    checks.insert("ffprobe", ffprobe);
    let ready = checks.values().all(Result::is_ok);
    let checks: BTreeMap<_, _> = checks
        .into_iter()
        .map(|(name, result)| match result {
            Ok(()) => (name, "ok"),
            Err(cause) => {
                tracing::warn!(check = name, %cause, "readiness check failed");
                (name, "unavailable")
            }
        })
        .collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Readiness { status: if ready { "ready" } else { "unready" }, checks })
}
async fn tool_runs(program: &Path) -> Result<(), String> {
    let run = tokio::process::Command::new(program)
        .arg("-version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("{} -version exited with {status}", program.display())),
        Ok(Err(err)) => Err(format!("{} not runnable: {err}", program.display())),
        Err(_) => Err(format!("{} -version timed out", program.display())),
    }
}
