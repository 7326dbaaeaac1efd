//! The client commands of the `reel` binary: `upload`, `status`, `feed`. Facts go to stdout as
//! `key: value` lines (or one line per feed item); progress and hints go to stderr.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::error::ClientError;
use super::http::ReelClient;
use super::model::VideoView;
use super::progress;
use super::state::StateStore;
use super::upload::{UploadOptions, Uploader, Waited};

/// How `reel upload` behaves.
#[derive(Debug, Clone, Copy)]
pub struct UploadCommand {
    /// Wait for the pipeline and print the final status.
    pub wait: bool,
    /// Longest wait for the pipeline.
    pub wait_timeout: Duration,
    /// Parts in flight at once.
    pub concurrency: usize,
}

/// `reel upload FILE`: uploads (or resumes) the file, optionally waits until it is processed.
/// Ctrl-C stops cleanly and leaves the session resumable.
pub async fn upload(client: ReelClient, file: &Path, command: UploadCommand) -> anyhow::Result<()> {
    let cancel = cancel_on_ctrl_c();
    let (events, received) = tokio::sync::mpsc::unbounded_channel();
    let renderer = tokio::spawn(progress::render(received));
    let options = UploadOptions { concurrency: command.concurrency, ..UploadOptions::default() };
    let uploader = Uploader::new(client, StateStore::from_env()?, options).with_events(events);
    let result = upload_and_wait(&uploader, file, command, &cancel).await;
    drop(uploader);
    let _ = renderer.await;
    match result {
        Ok(view) => print_outcome(view.as_ref()),
        Err(ClientError::Interrupted { upload_id }) => anyhow::bail!(
            "interrupted: upload {upload_id} is kept; run `reel upload {}` again to resume it",
            file.display()
        ),
        Err(other) => Err(other.into()),
    }
}

async fn upload_and_wait(
    uploader: &Uploader,
    file: &Path,
    command: UploadCommand,
    cancel: &CancellationToken,
) -> Result<Option<Waited>, ClientError> {
    let outcome = uploader.upload(file, cancel).await?;
    if !command.wait {
        return Ok(None);
    }
    uploader.wait(&outcome.video_id, command.wait_timeout, cancel).await.map(Some)
}

fn print_outcome(waited: Option<&Waited>) -> anyhow::Result<()> {
    let Some(waited) = waited else {
        return Ok(());
    };
    for (key, after) in [("playable_after_ms", waited.playable_after), ("ready_after_ms", waited.ready_after)] {
        if let Some(after) = after {
            println!("{key}: {}", after.as_millis());
        }
    }
    match &waited.view {
        VideoView::Ready { playback_manifest_url, .. } => {
            println!("status: ready\nmanifest_url: {playback_manifest_url}");
        }
        VideoView::Failed { failed_reason, retryable, .. } => {
            let reason = failed_reason.as_deref().unwrap_or("unknown");
            let retryable = retryable.map_or_else(|| "unknown".to_owned(), |r| r.to_string());
            println!("status: failed\nfailed_reason: {reason}\nretryable: {retryable}");
            anyhow::bail!("processing failed: {reason}");
        }
        VideoView::Processing { .. } => println!("status: processing"),
    }
    Ok(())
}

/// A token cancelled by the first Ctrl-C (SIGINT).
fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    cancel
}

/// `reel status VIDEO_ID`: the video's JSON, pretty.
pub async fn status(client: ReelClient, video_id: &str) -> anyhow::Result<()> {
    let reply = client.video(video_id).await?;
    println!("{}", serde_json::to_string_pretty(&reply.body)?);
    Ok(())
}

/// `reel feed`: one line per item (`id<TAB>status<TAB>manifest URL | stage | reason`).
pub async fn feed(client: ReelClient, limit: u32) -> anyhow::Result<()> {
    let page = client.feed(limit, None).await?;
    for item in &page.items {
        println!("{}", item.summary());
    }
    Ok(())
}
