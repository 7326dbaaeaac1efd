//! `GET /healthz` (the process is up) and `GET /readyz` (its dependencies answer).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde_json::{Value, json};

use crate::app::AppState;

/// Liveness: answers as long as the process serves HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database and object store answer and ffmpeg/ffprobe run. 503 names the
/// failing checks.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (db, storage, ffmpeg, ffprobe) = tokio::join!(
        state.db.ping(),
        state.storage.ping(),
        tool_runs(&state.media.ffmpeg),
        tool_runs(&state.media.ffprobe),
    );
    let mut checks = BTreeMap::new();
    checks.insert("database", db.map_err(|e| e.to_string()));
    checks.insert("object_store", storage.map_err(|e| e.to_string()));
    checks.insert("ffmpeg", ffmpeg);
    checks.insert("ffprobe", ffprobe);
    let ready = checks.values().all(Result::is_ok);
    let checks: BTreeMap<_, _> =
        checks.into_iter().map(|(name, result)| (name, result.err().unwrap_or_else(|| "ok".to_owned()))).collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"status": if ready { "ready" } else { "unready" }, "checks": checks})))
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
