//! What a player fetches for the first frame of a video: the (capped) master, the start rung's
//! media playlist(s), init segment(s) and first media segment(s), audio included when it is a
//! separate rendition. Derived once per master and cap from the published playlists (parsed with
//! `m3u8-rs`) and kept in memory: published objects never change under their key, so the derived
//! list never goes stale, and the feed reads storage only on a video's first appearance.

use std::sync::Arc;

use m3u8_rs::{AlternativeMediaType, MasterPlaylist, MediaPlaylist};
use serde::Serialize;
use utoipa::ToSchema;

use super::master::cap_master;
use crate::storage::keys;
use crate::storage::{Storage, StorageError};

/// What an object is to the player.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// The multivariant playlist (the capped one when a cap applies).
    Master,
    /// A media playlist of the start rung or its audio rendition.
    Playlist,
    /// An init segment (`EXT-X-MAP`).
    Init,
    /// A first media segment.
    Segment,
}

/// One object of a start set, by storage key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartObject {
    /// What it is.
    pub kind: ObjectKind,
    /// Its storage key (the origin serves it at the same path).
    pub key: String,
    /// Its size as served (uncompressed).
    pub bytes: u64,
    /// Whether it carries audio only.
    pub audio: bool,
}

/// Everything the first frame of one master (at one cap) needs, in fetch order.
#[derive(Debug, Clone)]
pub struct StartSet {
    /// Master, then per rendition (video first) its playlist, init and first segment.
    pub objects: Vec<StartObject>,
    /// The text of every playlist in `objects`, by key, in the same order.
    pub playlists: Vec<(String, Arc<str>)>,
}

impl StartSet {
    /// The sum of every object's size.
    pub fn bytes_total(&self) -> u64 {
        self.objects.iter().map(|o| o.bytes).sum()
    }
}

/// Why a start set could not be derived.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Reading an object failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A published object is missing.
    #[error("missing object {0}")]
    Missing(String),
    /// A playlist does not parse or lists nothing playable.
    #[error("unusable playlist {0}")]
    Playlist(String),
}

/// Start sets by (full master key, served master file), derived at most once each.
#[derive(Clone)]
pub struct StartSets {
    cache: moka::future::Cache<(String, String), Arc<StartSet>>,
}

impl StartSets {
    /// An empty cache holding up to `capacity` sets.
    pub fn new(capacity: u64) -> Self {
        StartSets { cache: moka::future::Cache::new(capacity) }
    }

    /// The start set of `served` (the full master's file name or a capped one beside it) for the
    /// master stored at `master_key`.
    pub async fn get(
        &self,
        storage: &Storage,
        master_key: &str,
        served: &str,
    ) -> Result<Arc<StartSet>, Arc<StartError>> {
        let id = (master_key.to_owned(), served.to_owned());
        self.cache.try_get_with(id, async { derive(storage, master_key, served).await.map(Arc::new) }).await
    }
}

async fn derive(storage: &Storage, master_key: &str, served: &str) -> Result<StartSet, StartError> {
    let full = read_text(storage, master_key).await?;
    let master_text = match keys::parse_capped_master(served) {
        Some((_, cap)) => cap_master(&full, cap).ok_or_else(|| StartError::Playlist(served.to_owned()))?,
        None => full.to_string(),
    };
    let served_key = keys::sibling(master_key, served);
    let master = m3u8_rs::parse_master_playlist_res(master_text.as_bytes())
        .map_err(|_| StartError::Playlist(served_key.clone()))?;
    let renditions = start_renditions(&master).ok_or_else(|| StartError::Playlist(served_key.clone()))?;
    let mut objects =
        vec![StartObject { kind: ObjectKind::Master, key: served_key.clone(), bytes: len(&master_text), audio: false }];
    let mut playlists = vec![(served_key.clone(), Arc::<str>::from(master_text))];
    for (uri, audio) in renditions {
        let key = resolve(&served_key, &uri).ok_or_else(|| StartError::Playlist(uri.clone()))?;
        let text = read_text(storage, &key).await?;
        let media =
            m3u8_rs::parse_media_playlist_res(text.as_bytes()).map_err(|_| StartError::Playlist(key.clone()))?;
        let (init, first) = first_objects(&media).ok_or_else(|| StartError::Playlist(key.clone()))?;
        objects.push(StartObject { kind: ObjectKind::Playlist, key: key.clone(), bytes: len(&text), audio });
        for (kind, uri) in init.map(|uri| (ObjectKind::Init, uri)).into_iter().chain([(ObjectKind::Segment, first)]) {
            let object = resolve(&key, uri).ok_or_else(|| StartError::Playlist(uri.to_owned()))?;
            let bytes =
                storage.size(&object.as_str().into()).await?.ok_or_else(|| StartError::Missing(object.clone()))?;
            objects.push(StartObject { kind, key: object, bytes, audio });
        }
        playlists.push((key, text));
    }
    Ok(StartSet { objects, playlists })
}

/// The media playlists a player loads first from `master`: the first listed variant (where
/// hls.js and AVPlayer start; reel lists the cellular floor first) and, when that variant names
/// an audio group, the group's default rendition (else its first). `(uri, is_audio)` pairs.
fn start_renditions(master: &MasterPlaylist) -> Option<Vec<(String, bool)>> {
    let variant = master.variants.iter().find(|v| !v.is_i_frame)?;
    let mut out = vec![(variant.uri.clone(), false)];
    if let Some(group) = &variant.audio {
        let in_group: Vec<_> = master
            .alternatives
            .iter()
            .filter(|a| a.media_type == AlternativeMediaType::Audio && &a.group_id == group && a.uri.is_some())
            .collect();
        let chosen = in_group.iter().find(|a| a.default).or_else(|| in_group.first());
        if let Some(uri) = chosen.and_then(|a| a.uri.clone()) {
            out.push((uri, true));
        }
    }
    Some(out)
}

/// A media playlist's init segment (if any) and first media segment.
fn first_objects(media: &MediaPlaylist) -> Option<(Option<&str>, &str)> {
    let first = media.segments.first()?;
    Some((first.map.as_ref().map(|m| m.uri.as_str()), first.uri.as_str()))
}

/// The key of `uri` relative to the object at `key`, when it stays in the packaged tree.
fn resolve(key: &str, uri: &str) -> Option<String> {
    let base = url::Url::parse("reel://origin/").ok()?.join(key).ok()?;
    let joined = base.join(uri).ok()?;
    let path = joined.path().trim_start_matches('/').to_owned();
    (joined.host_str() == Some("origin") && keys::parse_packaged(&path).is_some()).then_some(path)
}

async fn read_text(storage: &Storage, key: &str) -> Result<Arc<str>, StartError> {
    let bytes = storage.read_bytes(&key.into()).await?.ok_or_else(|| StartError::Missing(key.to_owned()))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| StartError::Playlist(key.to_owned()))?;
    Ok(Arc::from(text))
}

fn len(text: &str) -> u64 {
    u64::try_from(text.len()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "packaged/01a22870-8813-73dd-b4cc-abd36a3d34eb/hls";

    fn master(text: &str) -> MasterPlaylist {
        m3u8_rs::parse_master_playlist_res(text.as_bytes()).expect("master parses")
    }

    #[test]
    fn the_first_variant_and_its_default_audio_start() {
        let separate = master(
            "#EXTM3U\n#EXT-X-VERSION:7\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"audio\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=180000,RESOLUTION=234x416,AUDIO=\"aac\"\n234p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=360x640,AUDIO=\"aac\"\n360p/index.m3u8\n",
        );
        assert_eq!(
            start_renditions(&separate),
            Some(vec![("234p/index.m3u8".to_owned(), false), ("audio/index.m3u8".to_owned(), true)])
        );
        let muxed = master(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=180000,RESOLUTION=234x416\ne2/234p/index.m3u8\n",
        );
        assert_eq!(start_renditions(&muxed), Some(vec![("e2/234p/index.m3u8".to_owned(), false)]));
    }

    #[test]
    fn the_init_and_first_segment_come_from_the_media_playlist() {
        let text = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1.000,\nseg-00001.m4s\n#EXTINF:2.000,\nseg-00002.m4s\n#EXT-X-ENDLIST\n";
        let media = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("media parses");
        assert_eq!(first_objects(&media), Some((Some("init.mp4"), "seg-00001.m4s")));
    }

    #[test]
    fn uris_resolve_inside_the_packaged_tree_only() {
        let master = format!("{ROOT}/master.v2~540p.m3u8");
        assert_eq!(resolve(&master, "l2/720p/index.m3u8"), Some(format!("{ROOT}/l2/720p/index.m3u8")));
        let playlist = format!("{ROOT}/e2/234p/index.m3u8");
        assert_eq!(resolve(&playlist, "seg-00001.m4s"), Some(format!("{ROOT}/e2/234p/seg-00001.m4s")));
        assert_eq!(resolve(&playlist, "../../../../raw/x/source.mp4"), None);
        assert_eq!(resolve(&playlist, "https://elsewhere.example/seg.m4s"), None);
    }
}
