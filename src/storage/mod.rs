//! Object storage: the origin's bucket (local filesystem by default, S3-compatible in
//! production) behind `object_store`, plus where upload parts are staged until completion.
//!
//! Staging differs by backend. Locally each part is its own object under `staging/{upload}/`
//! and completion concatenates them into the source key (a temp file renamed into place). On S3
//! the parts live in a real multipart upload (so clients can PUT straight to presigned URLs) and
//! completion is `CompleteMultipartUpload` followed by a server-side rename.

pub mod keys;
mod s3;

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use sha2::{Digest, Sha256};

pub use s3::{ListedPart, S3Multipart};

use crate::config::{StorageBackend, StorageConfig};
use crate::model::{StoredPart, UploadId, UploadSession};

/// Errors of the object store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Invalid settings.
    #[error("storage configuration: {0}")]
    Config(String),
    /// An `object_store` operation failed.
    #[error(transparent)]
    Object(#[from] object_store::Error),
    /// An S3 request failed with a status.
    #[error("S3 {op} failed with status {status}: {body}")]
    S3 { op: &'static str, status: u16, body: String },
    /// S3 answered something unparseable.
    #[error("S3 {op} answered unexpectedly: {detail}")]
    Protocol { op: &'static str, detail: String },
    /// The S3 endpoint could not be reached.
    #[error("S3 request failed: {0}")]
    Http(#[source] reqwest::Error),
    /// The body being stored failed (client went away, or verification refused it).
    #[error("upload body failed: {0}")]
    Body(#[source] std::io::Error),
    /// A staged upload has no multipart id although the backend needs one.
    #[error("upload {0} has no multipart upload on the bucket")]
    NoMultipart(UploadId),
}

impl StorageError {
    fn protocol(op: &'static str, detail: impl std::fmt::Display) -> Self {
        StorageError::Protocol { op, detail: detail.to_string() }
    }
}

/// Outcome of assembling an upload's parts into its source object.
#[derive(Debug)]
pub enum Assembly {
    /// The source object is in place.
    Stored {
        /// Its key.
        key: Path,
    },
    /// The whole-file SHA-256 did not match the declared one; nothing was published.
    ChecksumMismatch {
        /// What the bytes hash to.
        actual: String,
        /// Whether the staged parts had to be discarded (S3 consumes them on completion).
        parts_discarded: bool,
    },
}

/// The object store facade the rest of reel uses.
#[derive(Debug, Clone)]
pub struct Storage {
    objects: Arc<dyn ObjectStore>,
    multipart: Option<S3Multipart>,
    direct_uploads: bool,
}

/// How [`Storage::assemble`] names the source: `name` gets the first `head_len` bytes of the
/// file (fewer when it is shorter) and returns the key to store it under.
#[derive(Debug)]
pub struct Naming<F> {
    /// How many leading bytes `name` needs.
    pub head_len: u64,
    /// Builds the key from those bytes.
    pub name: F,
}

impl Storage {
    /// Opens the configured backend. Nothing is contacted yet; see [`Storage::ping`].
    pub fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        match config.backend {
            StorageBackend::Local => {
                std::fs::create_dir_all(&config.local_root)
                    .map_err(|e| StorageError::Config(format!("cannot create {:?}: {e}", config.local_root)))?;
                let objects = LocalFileSystem::new_with_prefix(&config.local_root)?;
                Ok(Storage { objects: Arc::new(objects), multipart: None, direct_uploads: false })
            }
            StorageBackend::S3 => {
                let s3 = config.s3.as_ref().ok_or_else(|| {
                    StorageError::Config("storage.backend = \"s3\" needs a [storage.s3] section".into())
                })?;
                let objects = AmazonS3Builder::new()
                    .with_endpoint(&s3.endpoint)
                    .with_region(&s3.region)
                    .with_bucket_name(&s3.bucket)
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(s3.secret_access_key.expose())
                    .with_virtual_hosted_style_request(!s3.path_style)
                    .with_allow_http(true)
                    .build()?;
                let multipart = S3Multipart::new(s3, config.presign_ttl)?;
                Ok(Storage {
                    objects: Arc::new(objects),
                    multipart: Some(multipart),
                    direct_uploads: s3.direct_uploads,
                })
            }
        }
    }

    /// The underlying object store, for reads and writes of whole objects.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Whether clients get presigned URLs to PUT parts straight to the bucket.
    pub fn direct_uploads(&self) -> bool {
        self.direct_uploads
    }

    /// Checks the store answers: a HEAD of a key that does not exist must say "not found".
    pub async fn ping(&self) -> Result<(), StorageError> {
        match self.objects.head(&Path::from("readyz/probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Prepares staging for a new upload; returns the S3 multipart id on S3.
    pub async fn begin_upload(&self, upload_id: UploadId) -> Result<Option<String>, StorageError> {
        match &self.multipart {
            Some(s3) => Ok(Some(s3.create(keys::staged_source(upload_id).as_ref()).await?)),
            None => Ok(None),
        }
    }

    /// A presigned URL for a client to PUT part `n` straight to the bucket, when enabled.
    pub fn presign_part(&self, session: &UploadSession, part_number: u32) -> Result<Option<url::Url>, StorageError> {
        match (&self.multipart, self.direct_uploads) {
            (Some(s3), true) => {
                let upload_id = session.s3_upload_id.as_deref().ok_or(StorageError::NoMultipart(session.id))?;
                let key = keys::staged_source(session.id);
                Ok(Some(s3.presign_part(key.as_ref(), upload_id, part_number)?))
            }
            _ => Ok(None),
        }
    }

    /// Parts present in the bucket's multipart upload (S3 only; empty elsewhere).
    pub async fn list_staged_parts(&self, session: &UploadSession) -> Result<Vec<ListedPart>, StorageError> {
        match &self.multipart {
            Some(s3) => {
                let upload_id = session.s3_upload_id.as_deref().ok_or(StorageError::NoMultipart(session.id))?;
                s3.list_parts(keys::staged_source(session.id).as_ref(), upload_id).await
            }
            None => Ok(Vec::new()),
        }
    }

    /// Streams part `n` into staging and returns its ETag. When `body` yields an error the part is
    /// discarded and any earlier copy of the same part stays as it was.
    pub async fn stage_part<S>(
        &self,
        session: &UploadSession,
        part_number: u32,
        len: u64,
        body: S,
    ) -> Result<String, StorageError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    {
        match &self.multipart {
            Some(s3) => {
                let upload_id = session.s3_upload_id.as_deref().ok_or(StorageError::NoMultipart(session.id))?;
                s3.upload_part(keys::staged_source(session.id).as_ref(), upload_id, part_number, len, body).await
            }
            None => self.write_streaming(&keys::staged_part(session.id, part_number), body).await,
        }
    }

    /// Writes a stream to `key` through a multipart writer, in bounded memory. The object appears
    /// atomically on success; on a body error the partial write is aborted.
    async fn write_streaming<S>(&self, key: &Path, mut body: S) -> Result<String, StorageError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        let mut writer = WriteMultipart::new(self.objects.put_multipart(key).await?);
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    writer.wait_for_capacity(2).await?;
                    writer.put(bytes);
                }
                Err(err) => {
                    writer.abort().await?;
                    return Err(StorageError::Body(err));
                }
            }
        }
        let result = writer.finish().await?;
        Ok(result.e_tag.unwrap_or_default())
    }

    /// Assembles the parts of `session` into its source object. `name` receives the first bytes
    /// of the file and returns the final key (the extension depends on the detected container).
    /// Idempotent: calling it again after a crash finishes the job.
    pub async fn assemble(
        &self,
        session: &UploadSession,
        parts: &[StoredPart],
        naming: Naming<impl FnOnce(&[u8]) -> Path>,
    ) -> Result<Assembly, StorageError> {
        match &self.multipart {
            Some(s3) => self.assemble_s3(s3, session, parts, naming).await,
            None => self.assemble_local(session, parts, naming).await,
        }
    }

    async fn assemble_local(
        &self,
        session: &UploadSession,
        parts: &[StoredPart],
        naming: Naming<impl FnOnce(&[u8]) -> Path>,
    ) -> Result<Assembly, StorageError> {
        let first = keys::staged_part(session.id, 1);
        let head = self.objects.get_range(&first, 0..naming.head_len.min(session.size_bytes)).await?;
        let key = (naming.name)(&head);
        let mut hasher = Sha256::new();
        let mut writer = WriteMultipart::new(self.objects.put_multipart(&key).await?);
        for part in parts {
            let mut stream = self.objects.get(&keys::staged_part(session.id, part.part_number)).await?.into_stream();
            while let Some(chunk) = stream.try_next().await? {
                hasher.update(&chunk);
                writer.wait_for_capacity(2).await?;
                writer.put(chunk);
            }
        }
        let actual = hex::encode(hasher.finalize());
        if session.sha256.as_deref().is_some_and(|declared| declared != actual) {
            writer.abort().await?;
            return Ok(Assembly::ChecksumMismatch { actual, parts_discarded: false });
        }
        writer.finish().await?;
        Ok(Assembly::Stored { key })
    }

    async fn assemble_s3(
        &self,
        s3: &S3Multipart,
        session: &UploadSession,
        parts: &[StoredPart],
        naming: Naming<impl FnOnce(&[u8]) -> Path>,
    ) -> Result<Assembly, StorageError> {
        let staged = keys::staged_source(session.id);
        if self.exists(&staged).await? {
            tracing::info!(upload_id = %session.id, "multipart already completed by an earlier attempt");
        } else if let Some(key) = self.renamed_source(session).await? {
            // An earlier attempt got as far as the rename and died before recording the key.
            tracing::info!(upload_id = %session.id, key = %key, "source already renamed by an earlier attempt");
            return Ok(Assembly::Stored { key });
        } else {
            let upload_id = session.s3_upload_id.as_deref().ok_or(StorageError::NoMultipart(session.id))?;
            let etags: Vec<String> = parts.iter().map(|p| p.etag.clone()).collect();
            s3.complete(staged.as_ref(), upload_id, &etags).await?;
        }
        if let Some(declared) = session.sha256.as_deref() {
            let actual = self.sha256_of(&staged).await?;
            if actual != declared {
                self.objects.delete(&staged).await?;
                return Ok(Assembly::ChecksumMismatch { actual, parts_discarded: true });
            }
        }
        let head = self.objects.get_range(&staged, 0..naming.head_len.min(session.size_bytes)).await?;
        let key = (naming.name)(&head);
        self.objects.rename(&staged, &key).await?;
        Ok(Assembly::Stored { key })
    }

    /// The source an earlier completion of `session` already renamed into place, if any.
    async fn renamed_source(&self, session: &UploadSession) -> Result<Option<Path>, StorageError> {
        let dir = keys::source_dir(&session.creator_id, session.video_id);
        let mut listed = self.objects.list(Some(&dir));
        while let Some(meta) = listed.try_next().await? {
            let named = meta.location.filename().is_some_and(|name| name.starts_with("source."));
            if named && meta.size == session.size_bytes {
                return Ok(Some(meta.location));
            }
        }
        Ok(None)
    }

    /// Frees everything staged for an upload: S3 multipart parts and staged objects.
    pub async fn discard_staging(&self, session: &UploadSession) -> Result<(), StorageError> {
        if let (Some(s3), Some(upload_id)) = (&self.multipart, session.s3_upload_id.as_deref()) {
            s3.abort(keys::staged_source(session.id).as_ref(), upload_id).await?;
        }
        self.delete_prefix(&keys::staging_prefix(session.id)).await
    }

    /// Deletes every object under `prefix`.
    pub async fn delete_prefix(&self, prefix: &Path) -> Result<(), StorageError> {
        let locations = self.objects.list(Some(prefix)).map_ok(|meta| meta.location).boxed();
        self.objects.delete_stream(locations).try_collect::<Vec<_>>().await?;
        Ok(())
    }

    /// Whether an object exists.
    pub async fn exists(&self, key: &Path) -> Result<bool, StorageError> {
        match self.objects.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Streams an object into a local file.
    pub async fn download(&self, key: &Path, to: &std::path::Path) -> Result<(), StorageError> {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::create(to).await.map_err(StorageError::Body)?;
        let mut stream = self.objects.get(key).await?.into_stream();
        while let Some(chunk) = stream.try_next().await? {
            file.write_all(&chunk).await.map_err(StorageError::Body)?;
        }
        file.flush().await.map_err(StorageError::Body)
    }

    /// Uploads a local file, streaming it in bounded memory.
    pub async fn upload_file(&self, key: &Path, from: &std::path::Path) -> Result<(), StorageError> {
        let file = tokio::fs::File::open(from).await.map_err(StorageError::Body)?;
        let chunks = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        self.write_streaming(key, chunks).await.map(drop)
    }

    /// Writes a small object in one request.
    pub async fn upload_bytes(&self, key: &Path, bytes: Bytes) -> Result<(), StorageError> {
        self.objects.put(key, bytes.into()).await?;
        Ok(())
    }

    /// Reads a small object whole; `None` when it does not exist.
    pub async fn read_bytes(&self, key: &Path) -> Result<Option<Bytes>, StorageError> {
        match self.objects.get(key).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// Streams an object through SHA-256.
    pub async fn sha256_of(&self, key: &Path) -> Result<String, StorageError> {
        let mut hasher = Sha256::new();
        let mut stream = self.objects.get(key).await?.into_stream();
        while let Some(chunk) = stream.try_next().await? {
            hasher.update(&chunk);
        }
        Ok(hex::encode(hasher.finalize()))
    }
}
