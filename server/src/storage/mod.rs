//! Storage: content-addressed blobs ([`BlobStore`]) and repository metadata
//! ([`MetadataStore`]), behind object-safe async traits so the backend is chosen by
//! configuration at run time. Storage knows nothing of HTTP.
//!
//! The traits are shaped for remote stores too (S3, PostgreSQL): no directory listing,
//! streaming bodies in and out, every call async. A new backend is done when it passes the
//! shared suite in `server/tests/storage` (one `storage_suite!` line there).

mod fs;
mod memory;
mod meta;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use quayside_spec::grammar::{Algorithm, Digest, RepoName, Tag};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use fs::FsBlobStore;
pub use memory::MemoryBlobStore;
pub use meta::RedbMetadataStore;

/// A body streamed into or out of storage.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// A blob that exists: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// A byte range of a blob as a client asks for it (HTTP `Range` semantics, inclusive end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From `start` to `end` inclusive, or to the end of the blob when `end` is `None`.
    From { start: u64, end: Option<u64> },
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The half-open byte range this selects in a blob of `size` bytes; an end past the
    /// blob is clamped, a start past it (or an empty suffix) cannot be satisfied.
    pub fn resolve(self, size: u64) -> Result<Range<u64>> {
        let unsatisfiable = || Error::RangeNotSatisfiable {
            requested: self.to_string(),
            size,
        };
        match self {
            ByteRange::From { start, end } => {
                let end = end.map_or(size, |e| e.saturating_add(1).min(size));
                if start >= size || end <= start {
                    return Err(unsatisfiable());
                }
                Ok(start..end)
            }
            ByteRange::Suffix(n) => {
                if n == 0 || size == 0 {
                    return Err(unsatisfiable());
                }
                Ok(size.saturating_sub(n)..size)
            }
        }
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByteRange::From {
                start,
                end: Some(e),
            } => write!(f, "bytes={start}-{e}"),
            ByteRange::From { start, end: None } => write!(f, "bytes={start}-"),
            ByteRange::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

/// An open blob: the selected bytes as a stream.
pub struct BlobRead {
    /// Size of the whole blob.
    pub size: u64,
    /// The bytes served (the whole blob when no range was asked for).
    pub range: Range<u64>,
    pub body: ByteStream,
}

impl fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobRead")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// An upload session id: 128 random bits as 32 lowercase hex characters, so it is
/// unguessable and safe as a path component or object key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id.
    pub fn random() -> UploadId {
        UploadId(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = Error;
    /// Anything but our own id shape is an unknown session (never a path to follow).
    fn from_str(s: &str) -> Result<Self> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(UploadId(s.to_owned()))
        } else {
            Err(Error::BlobUploadUnknown {
                session: s.to_owned(),
            })
        }
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: UploadId,
    /// Bytes received so far (the next chunk starts here).
    pub size: u64,
    /// Algorithm chosen at creation (`digest-algorithm`), if any; otherwise the commit's
    /// expected digest decides.
    pub algorithm: Option<Algorithm>,
    /// Last time data arrived or the session was created (expiry counts from here).
    pub updated: SystemTime,
}

/// Work run next to a commit once its content is verified (see
/// [`BlobStore::upload_commit_alongside`]).
pub type Alongside<'a> = BoxFuture<'a, Result<()>>;

/// Content-addressed, global blob storage (repositories are metadata).
///
/// A blob becomes visible only once its size and digest are verified, and atomically.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Size of the blob, or `None` if it does not exist.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>>;

    /// Opens the blob, or the given range of it, for streaming. `BlobUnknown` if absent,
    /// `RangeNotSatisfiable` for a range outside it.
    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead>;

    /// Removes the blob; `BlobUnknown` if absent.
    async fn delete(&self, digest: &Digest) -> Result<()>;

    /// Stores small content (a manifest) after checking it hashes to `expected`.
    async fn put(&self, expected: &Digest, bytes: Bytes) -> Result<BlobInfo>;

    /// Starts an upload session; `algorithm` fixes the hash when the client chose one.
    async fn upload_create(&self, algorithm: Option<Algorithm>) -> Result<UploadStatus>;

    /// Appends `body` to the upload. `offset` is where the client says the chunk starts
    /// (`None` = at the end); a mismatch is `ChunkOutOfOrder` and nothing is written.
    /// Returns the upload's new size.
    async fn upload_append(
        &self,
        id: &UploadId,
        offset: Option<u64>,
        body: ByteStream,
    ) -> Result<u64>;

    /// The session's progress; `BlobUploadUnknown` if it does not exist.
    async fn upload_status(&self, id: &UploadId) -> Result<UploadStatus>;

    /// Appends `last` (if any), verifies the total size (if `expected_size` is given) and the
    /// digest, then makes the blob visible and ends the session. On a size or digest
    /// mismatch nothing becomes visible and the session is discarded (the client starts
    /// again, as the spec says).
    async fn upload_commit(
        &self,
        id: &UploadId,
        expected: &Digest,
        expected_size: Option<u64>,
        last: Option<ByteStream>,
    ) -> Result<BlobInfo>;

    /// [`upload_commit`](BlobStore::upload_commit), running `alongside` once the content
    /// is verified, at the same time as the blob is made durable: the registry records the
    /// blob in its repository meanwhile rather than after (each step waits on an fsync). An
    /// error of `alongside` fails the commit, though the blob may be published by then
    /// (verified content under its digest is harmless); on a size or digest mismatch it
    /// never runs. A crash may thus leave what `alongside` recorded without the blob, so
    /// such records are checked against [`stat`](BlobStore::stat) where it matters.
    async fn upload_commit_alongside(
        &self,
        id: &UploadId,
        expected: &Digest,
        expected_size: Option<u64>,
        last: Option<ByteStream>,
        alongside: Alongside<'_>,
    ) -> Result<BlobInfo> {
        let info = self
            .upload_commit(id, expected, expected_size, last)
            .await?;
        alongside.await?;
        Ok(info)
    }

    /// Discards the session and its data; `BlobUploadUnknown` if it does not exist.
    async fn upload_cancel(&self, id: &UploadId) -> Result<()>;

    /// Discards sessions idle for at least `idle`; returns how many.
    async fn expire_uploads(&self, idle: Duration) -> Result<usize>;
}

/// What the registry remembers of a manifest in a repository (the bytes live in the
/// blob store under `digest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The `subject` it refers to (for the referrers API).
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Blobs and child manifests it references (config, layers, index entries).
    #[serde(default)]
    pub references: Vec<Digest>,
}

/// One page of a lexically ordered listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// True when entries follow the last one returned (the HTTP layer adds `Link`).
    pub more: bool,
}

/// Repository metadata: which blobs a repository may serve, its manifests, tags and
/// referrers. Every write is one atomic transaction.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Whether the repository has ever received content.
    async fn repository_exists(&self, repo: &RepoName) -> Result<bool>;

    /// Makes a blob visible in a repository (after a push or mount); creates the repository.
    async fn link_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()>;

    async fn is_linked(&self, repo: &RepoName, digest: &Digest) -> Result<bool>;

    /// Hides a blob from a repository; returns whether it was linked.
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool>;

    /// Records a manifest and points `tags` at it, all or nothing; creates the repository.
    async fn put_manifest(
        &self,
        repo: &RepoName,
        record: &ManifestRecord,
        tags: &[Tag],
    ) -> Result<()>;

    async fn get_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>>;

    /// Removes a manifest, the tags pointing at it and its referrer entry; returns the
    /// removed tags. `ManifestUnknown` if absent.
    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<Tag>>;

    async fn resolve_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Option<Digest>>;

    /// Points a tag at an existing manifest; `ManifestUnknown` if there is none.
    async fn put_tag(&self, repo: &RepoName, tag: &Tag, digest: &Digest) -> Result<()>;

    /// Removes a tag (not the manifest); `ManifestUnknown` if the tag does not exist.
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<()>;

    /// Tags in lexical order, after `last`, at most `n`; `NameUnknown` for an unknown
    /// repository.
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&Tag>,
        n: Option<usize>,
    ) -> Result<Page<Tag>>;

    /// Manifests whose subject is `subject`, ordered by digest, optionally only those of
    /// one artifact type (a manifest's artifact type falls back to its config media type
    /// as recorded by the caller). An unknown subject gives an empty list.
    async fn list_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<ManifestRecord>>;

    /// Repositories in lexical order, after `last`, at most `n`.
    async fn list_repositories(
        &self,
        last: Option<&RepoName>,
        n: Option<usize>,
    ) -> Result<Page<RepoName>>;
}

/// Which backend to run, as read from configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StorageConfig {
    /// Everything in memory, lost on exit (tests, demos).
    Memory,
    /// Blobs and uploads as files under `root`, metadata in `root/metadata.redb`; upload
    /// data written with `O_DIRECT` when `direct_io` (and the filesystem allows it); blobs
    /// fsynced before they are published when `sync` (metadata commits always are).
    Filesystem {
        root: PathBuf,
        direct_io: bool,
        sync: bool,
    },
}

/// The storage a registry runs on.
#[derive(Clone)]
pub struct Storage {
    pub blobs: Arc<dyn BlobStore>,
    pub metadata: Arc<dyn MetadataStore>,
}

impl Storage {
    /// Opens (creating if needed) the configured backend.
    pub async fn open(config: &StorageConfig) -> Result<Storage> {
        match config {
            StorageConfig::Memory => Ok(Storage {
                blobs: Arc::new(MemoryBlobStore::new()),
                metadata: Arc::new(RedbMetadataStore::in_memory()?),
            }),
            StorageConfig::Filesystem {
                root,
                direct_io,
                sync,
            } => {
                // The database's exclusive lock comes first: it keeps a second process
                // from sweeping the temp files of a running one.
                tokio::fs::create_dir_all(root)
                    .await
                    .map_err(|e| Error::io("creating the storage root", e))?;
                let metadata = RedbMetadataStore::open(root.join("metadata.redb")).await?;
                let blobs = FsBlobStore::open(root)
                    .await?
                    .with_direct_io(*direct_io)
                    .with_sync(*sync);
                Ok(Storage {
                    blobs: Arc::new(blobs),
                    metadata: Arc::new(metadata),
                })
            }
        }
    }
}

impl Storage {
    /// Runs [`BlobStore::expire_uploads`] every `every`, discarding sessions idle for
    /// `idle`, until the returned task is aborted or the runtime stops.
    pub fn spawn_upload_expiry(&self, idle: Duration, every: Duration) -> JoinHandle<()> {
        let blobs = self.blobs.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match blobs.expire_uploads(idle).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "discarded idle upload sessions"),
                    Err(e) => tracing::warn!(error = %e, "expiring upload sessions failed"),
                }
            }
        })
    }
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}

/// Checks a finished upload against what the client declared, size first.
fn verify(expected: &Digest, expected_size: Option<u64>, actual: &Digest, size: u64) -> Result<()> {
    if let Some(want) = expected_size {
        if want != size {
            return Err(Error::SizeInvalid {
                expected: want,
                actual: size,
            });
        }
    }
    if actual != expected {
        return Err(Error::DigestMismatch {
            expected: expected.clone(),
            actual: actual.clone(),
        });
    }
    Ok(())
}

/// The registered algorithm of a digest the client expects, or `Unsupported`.
fn algorithm_of(digest: &Digest) -> Result<Algorithm> {
    Ok(digest.supported_algorithm()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_against_the_blob_size() {
        let r = |start, end| ByteRange::From { start, end };
        assert_eq!(r(0, Some(9)).resolve(100).unwrap(), 0..10);
        assert_eq!(r(90, Some(200)).resolve(100).unwrap(), 90..100);
        assert_eq!(r(10, None).resolve(100).unwrap(), 10..100);
        assert_eq!(ByteRange::Suffix(30).resolve(100).unwrap(), 70..100);
        assert_eq!(ByteRange::Suffix(300).resolve(100).unwrap(), 0..100);
        for bad in [r(100, None), r(5, Some(4)), ByteRange::Suffix(0)] {
            let err = bad.resolve(100).unwrap_err();
            assert!(
                matches!(err, Error::RangeNotSatisfiable { size: 100, .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn upload_ids_are_random_hex_and_nothing_else_parses() {
        let a = UploadId::random();
        assert_ne!(a, UploadId::random());
        assert_eq!(a.as_str().parse::<UploadId>().unwrap(), a);
        for bad in ["../../etc", "", &"A".repeat(32), &"a".repeat(33)] {
            assert_eq!(
                bad.parse::<UploadId>().unwrap_err().code(),
                "BLOB_UPLOAD_UNKNOWN"
            );
        }
    }
}
