//! Phase 1's publisher: every start-rung and audio file is uploaded as soon as ffmpeg closes
//! it, and after each segment its rendition's `EVENT` media playlist is rewritten (appended to)
//! and uploaded. Once every start rung (and separate audio track) has a segment, the preview
//! master is written and the video is marked playable.
//!
//! Order per segment: the segment first, then the playlist naming it, so a playlist never lists
//! a segment that is not stored yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use object_store::path::Path as Key;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::lease::Lease;
use super::{Pipeline, StageError};
use crate::media::{self, AudioRendition, AudioTrack, Rung, SegmentStat, Variant};
use crate::model::{EventType, Job, OutboxEvent};
use crate::storage::keys::{self, INIT_SEGMENT, MEDIA_PLAYLIST};

/// One rendition as published so far.
#[derive(Debug, Default)]
pub(super) struct Track {
    init: Vec<u8>,
    /// Segments stored, in order, with durations read from the fragments.
    pub(super) segments: Vec<SegmentStat>,
}

/// What the publisher needs to know about the phase it publishes.
pub(super) struct StartPlan {
    /// The transcode job, as claimed.
    pub(super) job: Job,
    /// Its claim's lease: nothing is uploaded once it is lost.
    pub(super) lease: Lease,
    /// Local output directory of ffmpeg.
    pub(super) out: PathBuf,
    /// Key prefix of this attempt's tree.
    pub(super) root: Key,
    pub(super) rungs: Vec<Rung>,
    /// Separate audio tracks (none when audio is muxed into the rungs).
    pub(super) audio: Vec<AudioTrack>,
    /// The separate audio group each rung plays with, by rung name.
    pub(super) audio_groups: BTreeMap<String, String>,
    pub(super) frame_rate: (u32, u32),
    /// `EXT-X-TARGETDURATION` of every playlist of the video.
    pub(super) target_duration: u32,
    /// Completion time of the upload (for `complete_to_playable_ms`).
    pub(super) since: DateTime<Utc>,
}

impl StartPlan {
    fn dirs(&self) -> impl Iterator<Item = &str> {
        self.rungs.iter().map(|r| r.name.as_str()).chain(self.audio.iter().map(|a| a.name.as_str()))
    }
}

impl Pipeline {
    /// Publishes what ffmpeg finishes (sent on `finished`) until the channel closes; signals
    /// `playable` once the preview master is stored. Returns every track as published.
    pub(super) async fn publish_start(
        self,
        plan: StartPlan,
        mut finished: mpsc::Receiver<PathBuf>,
        playable: oneshot::Sender<()>,
    ) -> Result<BTreeMap<String, Track>, StageError> {
        let mut tracks: BTreeMap<String, Track> = plan.dirs().map(|d| (d.to_owned(), Track::default())).collect();
        let mut playable = Some(playable);
        while let Some(file) = finished.recv().await {
            let (dir, name) = split(&plan.out, &file)?;
            if name == MEDIA_PLAYLIST {
                continue;
            }
            let track = tracks
                .get_mut(&dir)
                .ok_or_else(|| StageError::Transient(anyhow::anyhow!("unexpected output {dir}")))?;
            let key = plan.root.child(dir.as_str()).child(name.as_str());
            let bytes = tokio::fs::read(&file).await?;
            plan.lease.check()?;
            self.storage.upload_bytes(&key, bytes.clone().into()).await?;
            if name == INIT_SEGMENT {
                track.init = bytes;
                continue;
            }
            let duration = media::segment_duration(&track.init, &bytes)
                .map_err(|e| StageError::Transient(anyhow::anyhow!("{dir}/{name}: {e}")))?;
            track.segments.push(SegmentStat { uri: name, duration, bytes: bytes.len() as u64 });
            let text = media::event_playlist(&track.segments, plan.target_duration, false);
            self.confirm(&plan.job, &plan.lease).await?;
            self.storage.upload_bytes(&plan.root.child(dir.as_str()).child(MEDIA_PLAYLIST), text.into()).await?;
            if playable.is_some() && tracks.values().all(|t| !t.segments.is_empty()) {
                self.announce_playable(&plan).await?;
                playable.take().map(|tx| tx.send(()));
            }
        }
        Ok(tracks)
    }

    async fn announce_playable(&self, plan: &StartPlan) -> Result<(), StageError> {
        let preview = plan.root.child(keys::PREVIEW_MASTER);
        let master = preview_master(plan).await?;
        plan.lease.check()?;
        self.storage.upload_bytes(&preview, master.into()).await?;
        let now = Utc::now();
        let (video_id, generation) = (plan.job.video_id, plan.job.generation);
        let event = OutboxEvent {
            id: Uuid::now_v7(),
            event_type: EventType::VideoPlayable,
            aggregate_id: video_id.to_string(),
            payload: json!({"video_id": video_id, "generation": generation, "manifest_key": preview.as_ref()}),
            created_at: now,
        };
        let marked = self.db.mark_playable(&plan.job, preview.as_ref(), &event, now).await?;
        if marked.ok_or(StageError::LeaseLost)? {
            let elapsed = (now - plan.since).num_milliseconds().max(0);
            metrics::histogram!("complete_to_playable_ms").record(elapsed as f64);
            tracing::info!(complete_to_playable_ms = elapsed, "video playable");
        }
        Ok(())
    }

    /// Closes the media playlists of an abandoned attempt (`preview_key` is its preview master)
    /// with `#EXT-X-ENDLIST`, so a player holding them ends cleanly instead of waiting for
    /// segments that will never come. Appending is all an `EVENT` playlist allows, so nothing
    /// it already listed changes.
    pub(super) async fn close_abandoned(&self, preview_key: &str, lease: &Lease) -> Result<(), StageError> {
        let master = match self.storage.read_bytes(&Key::from(preview_key)).await? {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => return Ok(()),
        };
        let uris = master.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(str::to_owned);
        let audio = master.lines().filter_map(|l| l.split("URI=\"").nth(1)?.split('"').next().map(str::to_owned));
        for uri in uris.chain(audio) {
            let key = Key::from(keys::sibling(preview_key, &uri));
            let Some(bytes) = self.storage.read_bytes(&key).await? else { continue };
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if !text.contains("#EXT-X-ENDLIST") {
                text.push_str("#EXT-X-ENDLIST\n");
                lease.check()?;
                self.storage.upload_bytes(&key, text.into()).await?;
            }
        }
        Ok(())
    }
}

/// `{out}/{dir}/{name}` → (`dir`, `name`).
fn split(out: &Path, file: &Path) -> Result<(String, String), StageError> {
    let outside = || StageError::Transient(anyhow::anyhow!("{} is outside the output directory", file.display()));
    let relative = file.strip_prefix(out).map_err(|_| outside())?;
    let mut parts = relative.iter().map(|p| p.to_string_lossy().into_owned());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(dir), Some(name), None) => Ok((dir, name)),
        _ => Err(outside()),
    }
}

/// The preview master over the start rungs: codecs from their init segments, bandwidths from
/// their rate control (their segments are still being written).
async fn preview_master(plan: &StartPlan) -> Result<String, StageError> {
    let mut variants = Vec::with_capacity(plan.rungs.len());
    for rung in &plan.rungs {
        let audio = match plan.audio_groups.get(&rung.name) {
            Some(group) => Some((group.as_str(), media::init_codecs(&plan.out.join(group)).await?)),
            None => None,
        };
        let audio = audio.as_ref().map(|(group, codecs)| (*group, codecs.as_str()));
        let codecs = media::init_codecs(&plan.out.join(&rung.name)).await?;
        variants.push(Variant::planned(rung, plan.frame_rate, &codecs, audio));
    }
    variants.sort_by_key(|v| v.bandwidth);
    let audio: Vec<AudioRendition> =
        plan.audio.iter().map(|a| AudioRendition { group: a.name.clone(), channels: 2 }).collect();
    Ok(media::render_master(&variants, &audio))
}
