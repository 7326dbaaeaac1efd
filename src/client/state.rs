//! Resume state: which open session a local file was being uploaded to.
//!
//! One small JSON file per source file, named by the SHA-256 of the file's canonical path, under
//! `$REEL_CLIENT_STATE_DIR`, else `$XDG_STATE_HOME/reel/uploads/`, else
//! `~/.local/state/reel/uploads/`:
//!
//! ```json
//! {"server": "http://127.0.0.1:8080", "upload_id": "…", "path": "/abs/clip.mp4",
//!  "size": 15728640, "mtime_ns": 1764400000000000000, "head_sha256": "…"}
//! ```
//!
//! `head_sha256` covers the first MiB. With size and mtime it tells "the same file, unchanged"
//! without hashing the whole file again.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::error::ClientError;

/// Overrides the state directory (tests, sandboxes).
pub const STATE_DIR_ENV: &str = "REEL_CLIENT_STATE_DIR";

const HEAD_BYTES: u64 = 1 << 20;

/// What identifies a local file's content cheaply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Canonical absolute path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
    /// SHA-256 (hex) of the first MiB.
    pub head_sha256: String,
}

impl Fingerprint {
    /// Fingerprints the file at `path`.
    pub async fn of(path: &Path) -> Result<Self, ClientError> {
        let file_error = |source| ClientError::File { path: path.to_owned(), source };
        let path = tokio::fs::canonicalize(path).await.map_err(file_error)?;
        let metadata = tokio::fs::metadata(&path).await.map_err(file_error)?;
        let modified = metadata.modified().map_err(file_error)?;
        let mtime_ns = modified.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        let mut head = Vec::new();
        let file = tokio::fs::File::open(&path).await.map_err(file_error)?;
        file.take(HEAD_BYTES).read_to_end(&mut head).await.map_err(file_error)?;
        let head_sha256 = hex::encode(Sha256::digest(&head));
        Ok(Fingerprint { path, size: metadata.len(), mtime_ns, head_sha256 })
    }
}

/// An upload in flight, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeState {
    /// Base URL of the server holding the session.
    pub server: String,
    /// The session.
    pub upload_id: String,
    /// The file it was started for.
    #[serde(flatten)]
    pub file: Fingerprint,
}

impl ResumeState {
    /// Whether this state belongs to `file`, unchanged, on `server`.
    pub fn matches(&self, server: &str, file: &Fingerprint) -> bool {
        self.server == server && self.file == *file
    }
}

/// The directory holding resume states.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// A store in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        StateStore { dir }
    }

    /// The store at the conventional location (see the module docs).
    pub fn from_env() -> Result<Self, ClientError> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = var(STATE_DIR_ENV)
            .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("reel/uploads")))
            .or_else(|| var("HOME").map(|d| d.join(".local/state/reel/uploads")))
            .ok_or(ClientError::NoStateDir)?;
        Ok(StateStore::new(dir))
    }

    /// The state file for the file at canonical `path`.
    pub fn file_for(&self, path: &Path) -> PathBuf {
        let key = hex::encode(Sha256::digest(path.as_os_str().as_encoded_bytes()));
        self.dir.join(format!("{}.json", &key[..32]))
    }

    /// The saved state for canonical `path`; an unreadable or foreign file counts as none.
    pub async fn load(&self, path: &Path) -> Option<ResumeState> {
        let text = tokio::fs::read(self.file_for(path)).await.ok()?;
        serde_json::from_slice::<ResumeState>(&text).ok().filter(|state| state.file.path == path)
    }

    /// Saves `state` atomically (temp file, then rename).
    pub async fn save(&self, state: &ResumeState) -> Result<(), ClientError> {
        let target = self.file_for(&state.file.path);
        let error = |e: &dyn std::fmt::Display| ClientError::State { path: target.clone(), message: e.to_string() };
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| error(&e))?;
        let text = serde_json::to_vec_pretty(state).map_err(|e| error(&e))?;
        let temp = target.with_extension("json.tmp");
        tokio::fs::write(&temp, text).await.map_err(|e| error(&e))?;
        tokio::fs::rename(&temp, &target).await.map_err(|e| error(&e))
    }

    /// Forgets the state for canonical `path` (a missing file is fine).
    pub async fn remove(&self, path: &Path) -> Result<(), ClientError> {
        let target = self.file_for(path);
        match tokio::fs::remove_file(&target).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ClientError::State { path: target, message: e.to_string() })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn fingerprint() -> Fingerprint {
        Fingerprint { path: "/videos/a.mp4".into(), size: 10, mtime_ns: 7, head_sha256: "ab".into() }
    }

    fn state() -> ResumeState {
        ResumeState { server: "http://reel".into(), upload_id: "u1".into(), file: fingerprint() }
    }

    #[test]
    fn state_matches_only_the_same_unchanged_file_on_the_same_server() {
        let s = state();
        assert!(s.matches("http://reel", &fingerprint()));
        assert!(!s.matches("http://other", &fingerprint()));
        assert!(!s.matches("http://reel", &Fingerprint { size: 11, ..fingerprint() }));
        assert!(!s.matches("http://reel", &Fingerprint { mtime_ns: 8, ..fingerprint() }));
        assert!(!s.matches("http://reel", &Fingerprint { head_sha256: "cd".into(), ..fingerprint() }));
        assert!(!s.matches("http://reel", &Fingerprint { path: "/videos/b.mp4".into(), ..fingerprint() }));
    }

    #[tokio::test]
    async fn states_round_trip_per_path_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("uploads"));
        let path = fingerprint().path;
        assert_eq!(store.load(&path).await, None);
        store.save(&state()).await.unwrap();
        assert_eq!(store.load(&path).await, Some(state()));
        assert_eq!(store.load(Path::new("/videos/b.mp4")).await, None);
        assert_ne!(store.file_for(&path), store.file_for(Path::new("/videos/b.mp4")));
        store.remove(&path).await.unwrap();
        store.remove(&path).await.unwrap();
        assert_eq!(store.load(&path).await, None);
    }

    #[tokio::test]
    async fn a_fingerprint_changes_with_the_content() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"first").unwrap();
        let before = Fingerprint::of(file.path()).await.unwrap();
        assert_eq!(before, Fingerprint::of(file.path()).await.unwrap());
        assert_eq!(before.size, 5);
        std::fs::write(file.path(), b"FIRST").unwrap();
        assert_ne!(Fingerprint::of(file.path()).await.unwrap().head_sha256, before.head_sha256);
    }
}
