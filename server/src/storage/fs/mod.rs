//! Filesystem blob store: blobs, upload sessions and temporary files under one root.
//!
//! Layout (`root/`):
//! - `blobs/<alg>/<first two hex>/<hex>`: verified content, immutable once visible.
//! - `uploads/<id>.data` and `uploads/<id>.json`: an upload session, which exists while its
//!   data file does. Its state is an extended attribute of the data file once a PATCH saved
//!   it (see `xattr.rs`), else the state file, where the filesystem has no user attributes
//!   or an algorithm was chosen at POST. The state's `size` is the number of bytes
//!   acknowledged to the client; bytes past it (from an append cut short by a crash) are ignored and truncated on
//!   the next append or commit. A session without a state file is as its POST left it
//!   (nothing acknowledged, the default algorithm). Flat files rather than a directory per
//!   session: on ext4, the first fsync of a file created in a new directory also writes
//!   that directory and its parent, and a directory costs a block to allocate and discard.
//!   A session's files are made in the background once its POST is answered; its first
//!   PATCH or PUT waits for them and reports a failure to make them. Until then the session
//!   lives in memory only.
//! - `tmp/`: files being built; emptied at open, never read as content.
//!
//! Upload data goes to the device with direct I/O (`direct.rs`), and downloads are sent
//! from the page cache without a copy when they can be (`read.rs`).
//!
//! Crash safety: every file becomes visible by `rename` after `fsync`, followed by an
//! `fsync` of the directory (the fsyncs of blobs are skipped when `storage.sync` is off).
//! A blob is renamed into `blobs/` only after its size and digest were verified, so a
//! `kill -9` at any moment leaves either no blob or the whole, correct blob. The registry
//! links a blob to its repository while these fsyncs run, so a crash may leave a link
//! whose blob never appeared; readers and manifest checks look for the blob itself.
//! Appended upload data is fsynced once, at commit (an fsync per chunk would cost a
//! disk flush per PATCH); if power loss leaves a session shorter than it acknowledged, the
//! session is reported invalid and the client starts again. Session bookkeeping (creation,
//! the state file, removal) is not fsynced either: it is still replaced by `rename`, so a
//! `kill -9` sees old or new state, and a power loss can only lose a session, which the
//! client then restarts — while each fsync costs milliseconds per request on slow disks.
//! So can a `kill -9` right after a POST, before the session's files were made.
//! One process owns a root at a time (the metadata database's lock enforces it).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use quayside_spec::grammar::{Algorithm, Digest, Digester};
use serde::{Deserialize, Serialize};

mod affinity;
mod direct;
mod drain;
mod read;
mod xattr;

use super::memory::check_offset;
use super::{
    algorithm_of, verify, Alongside, BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream,
    UploadId, UploadStatus,
};
use crate::error::{Error, Result};
use direct::DirectAppender;
use drain::Drain;

/// Read buffer for re-hashing upload data, and the size of the chunks a download is sent
/// in: large enough that per-chunk overhead vanishes next to copying (1 MiB pulled as fast
/// as 2 MiB, with 5–8 MiB less peak RSS).
const READ_CHUNK: usize = 1 << 20;
#[cfg(target_os = "linux")]
const _: () = assert!(READ_CHUNK as u64 <= read::DIRECT_SPAN);
/// Bytes gathered from the body before a hand-off to the writing and hashing jobs (a list
/// of frames, not a copy): one hand-off per batch instead of one per network frame.
const INGEST_BATCH: usize = 256 << 10;
/// Batches queued per job: bounds memory at a few MiB per upload.
const INGEST_QUEUE: usize = 2;
/// Batches after which an upload's hashing job keeps off the CPU that receives the body
/// (see `affinity.rs`). From the start, it made 1 MiB pushes 9% slower (moving a short job
/// to an idle vCPU costs more than it saves); from 2 MiB on, 64 MiB pushes went 9–10% and
/// 1 GiB pushes 3–4% faster, 1 MiB pushes unchanged (alternating runs).
const HASH_OFF_FEEDER_AFTER: usize = (2 << 20) / INGEST_BATCH;

/// Blobs and upload sessions as files under a root directory.
#[derive(Debug)]
pub struct FsBlobStore {
    root: PathBuf,
    /// One lock per session in use, guarding its files and caching its state and running
    /// hasher.
    sessions: Mutex<HashMap<UploadId, Arc<tokio::sync::Mutex<Option<Hot>>>>>,
    /// Whether upload data is written with `O_DIRECT` (see `direct.rs`).
    direct_io: bool,
    /// Whether blobs are fsynced before they are published (see [`FsBlobStore::with_sync`]).
    sync: bool,
}

/// A session as this process left it: its state and the running hash of its first
/// `state.size` bytes, so that an append or commit needs neither a trip to the blocking
/// pool to read the state file nor a re-read of the data. Trusted over the files because only
/// this process changes them (one process owns a root), under the session lock; it is
/// dropped whenever an append fails or the session is removed, and then the files decide.
#[derive(Debug)]
struct Hot {
    hasher: Digester,
    state: SessionState,
    /// Whether the session may have a state file (see [`Stored::Fresh`]).
    saved: bool,
    /// Whether the session's state may be an attribute of its data file.
    attributed: bool,
    /// The making of the session's files, while the request that needs them has not yet
    /// waited for it (see [`FsBlobStore::upload_create`]).
    making: Option<Making>,
}

/// The outcome of making a session's files in the background.
type Making = tokio::sync::oneshot::Receiver<io::Result<()>>;

/// Waits for the making of `hot`'s files, if under way. When it failed, the session is
/// dropped (its files are not there to go on from) and the failure is returned.
async fn made(hot: &mut Option<Hot>) -> Result<()> {
    let Some(making) = hot.as_mut().and_then(|h| h.making.take()) else {
        return Ok(());
    };
    let failure = match making.await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => io::Error::other("the job making the upload's files ended early"),
    };
    *hot = None;
    Err(Error::io("creating an upload", failure))
}

/// The durable part of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionState {
    /// Bytes acknowledged to the client.
    size: u64,
    /// `sha256`/`sha512` when chosen at creation.
    algorithm: Option<String>,
    /// Milliseconds since the Unix epoch of the last change.
    updated_ms: u64,
}

impl SessionState {
    fn algorithm(&self) -> Option<Algorithm> {
        self.algorithm.as_deref().and_then(|a| a.parse().ok())
    }

    fn status(&self, id: &UploadId) -> UploadStatus {
        UploadStatus {
            id: id.clone(),
            size: self.size,
            algorithm: self.algorithm(),
            updated: UNIX_EPOCH + Duration::from_millis(self.updated_ms),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs blocking file work off the async executor.
async fn blocking<T: Send + 'static>(
    context: &'static str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(context, e))?
        .map_err(|e| Error::io(context, e))
}

/// Makes a rename or creation inside `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Recreates a fan-out directory that `open` made but someone removed since (durably when
/// `sync`).
fn ensure_dir(dir: &Path, sync: bool) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    match dir.parent() {
        Some(parent) if sync => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `target` all-or-nothing: temp file in `tmp`, rename; with `sync`, the
/// file is fsynced before the rename and the directory after it.
fn write_atomic(tmp: &Path, target: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut file = tempfile::NamedTempFile::new_in(tmp)?;
    file.write_all(bytes)?;
    if sync {
        file.as_file().sync_all()?;
    }
    file.persist(target).map_err(|e| e.error)?;
    if sync {
        sync_dir(target.parent().unwrap_or(tmp))?;
    }
    Ok(())
}

/// Replaces `target` by `rename`, without fsync: for session state that may be lost on
/// power loss but must never be seen half-written.
fn write_replace(tmp: &Path, target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = tempfile::NamedTempFile::new_in(tmp)?;
    file.write_all(bytes)?;
    file.persist(target).map_err(|e| e.error)?;
    Ok(())
}

/// A session's files: `uploads/<id>.data` and `uploads/<id>.json`.
#[derive(Clone)]
struct SessionFiles {
    data: PathBuf,
    state: PathBuf,
}

/// What a session's files say of it.
enum Stored {
    /// No data file: the session never existed, or a commit cut short published its data.
    Unknown,
    /// Data but no state file: as its POST made it; the data file's modification time.
    Fresh { modified_ms: u64 },
    /// The raw state file.
    Saved(Vec<u8>),
}

fn load_state(files: &SessionFiles) -> io::Result<Stored> {
    let data = match std::fs::metadata(&files.data) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Stored::Unknown),
        Err(e) => return Err(e),
    };
    // The attribute, once set, is newer than the state file (which only a POST or a
    // filesystem without attributes writes).
    if let Some(raw) = xattr::get(&files.data)? {
        return Ok(Stored::Saved(raw));
    }
    match std::fs::read(&files.state) {
        Ok(raw) => Ok(Stored::Saved(raw)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let modified = data
                .modified()?
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Ok(Stored::Fresh {
                modified_ms: modified.as_millis() as u64,
            })
        }
        Err(e) => Err(e),
    }
}

fn decode_state(id: &UploadId, stored: Stored) -> Result<SessionState> {
    match stored {
        Stored::Unknown => Err(Error::BlobUploadUnknown {
            session: id.to_string(),
        }),
        Stored::Fresh { modified_ms } => Ok(SessionState {
            size: 0,
            algorithm: None,
            updated_ms: modified_ms,
        }),
        Stored::Saved(raw) => {
            serde_json::from_slice(&raw).map_err(|e| Error::internal("decoding an upload state", e))
        }
    }
}

/// Moves sessions of the earlier layout (`uploads/<id>/data` and `state.json`) to
/// `uploads/<id>.data` and `.json`, so uploads under way survive an upgrade.
fn flatten_session_dirs(uploads: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(uploads)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let dir = entry.path();
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<UploadId>().ok())
        {
            // State first, as a session exists once its data file does.
            for (old, new) in [("state.json", "json"), ("data", "data")] {
                match std::fs::rename(dir.join(old), uploads.join(format!("{id}.{new}"))) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

/// Removes a session's files, data first (the session is unknown from then on); files
/// already gone are fine.
fn remove_session_files(files: &SessionFiles) -> io::Result<()> {
    for path in [&files.data, &files.state] {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// What publishing a verified upload did.
enum Published {
    /// The blob is in place.
    New,
    /// The blob was already there; the session's data went to the spare path in `tmp/`.
    Duplicate,
    /// The data file no longer holds the acknowledged bytes (power loss).
    Lost,
}

/// What checking an upload against its expected digest found.
enum Checked {
    /// The data is shorter than acknowledged (power loss): the session must go.
    Lost,
    /// Size or digest differ from the client's: the session is already removed.
    Rejected(Error),
    /// The session's data is the expected content, with this digest.
    Verified(Digest),
}

/// Hashes the first `size` bytes of `path` with `algorithm`.
fn hash_file(path: &Path, algorithm: Algorithm, size: u64) -> io::Result<Digester> {
    let mut hasher = Digester::new(algorithm);
    if size == 0 {
        // A session's first append (every monolithic PUT): nothing to read.
        return Ok(hasher);
    }
    let mut file = std::fs::File::open(path)?.take(size);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut seen = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        seen += n as u64;
    }
    if seen != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("upload data has {seen} bytes, its state says {size}"),
        ));
    }
    Ok(hasher)
}

/// Streams `body` onto `path` after its first `size` bytes while hashing it. The same
/// batches (shared, never copied) go to a hashing job and to a job that copies them into
/// the appender's aligned buffer and writes it (see `direct.rs`), so hashing and writing
/// overlap on two cores. Both are [`Drain`]s: they hold a blocking thread only while
/// batches are at hand, never while the client is slow to send the next. Returns the
/// hasher and the number of bytes written. No fsync here: data is made durable once, at
/// commit, before it is published.
async fn ingest(
    path: PathBuf,
    size: u64,
    direct_io: bool,
    mut hasher: Digester,
    mut body: ByteStream,
) -> Result<(Digester, u64)> {
    // A body that ends within one batch (configs, small layers, the last PATCH of many) is
    // hashed and written in one trip to the blocking pool: two jobs would cost more than
    // the bytes.
    let mut first = Vec::new();
    let mut gathered = 0usize;
    let mut ended = false;
    while gathered < INGEST_BATCH {
        match body.next().await {
            None => {
                ended = true;
                break;
            }
            Some(chunk) => {
                let chunk = chunk?;
                gathered += chunk.len();
                first.push(chunk);
            }
        }
    }
    if ended && gathered == 0 {
        // Nothing to write (a closing PUT after PATCHes): no trip to the blocking pool.
        // Bytes past the end, if any, are cut by the next append or the commit.
        return Ok((hasher, 0));
    }
    if ended {
        return blocking("writing upload data", move || {
            let file = std::fs::OpenOptions::new().write(true).open(&path)?;
            direct::ensure_holds(&file, size)?;
            let mut at = size;
            for chunk in &first {
                hasher.update(chunk);
                std::os::unix::fs::FileExt::write_all_at(&file, chunk, at)?;
                at += chunk.len() as u64;
            }
            // Bytes past the end (an earlier append cut short) go.
            if file.metadata()?.len() != at {
                file.set_len(at)?;
            }
            Ok((hasher, at - size))
        })
        .await;
    }
    let writer = Drain::new(
        Writer::Closed {
            path,
            size,
            direct_io,
        },
        INGEST_QUEUE,
        Writer::step,
    );
    let hashing = Drain::new(
        hasher,
        INGEST_QUEUE,
        |hasher: &mut Digester, batch: Batch| {
            for chunk in batch.iter() {
                hasher.update(chunk);
            }
            Ok(())
        },
    )
    .off_feeder(HASH_OFF_FEEDER_AFTER);
    let mut failure = None;
    // What was gathered above is the first batch.
    let mut batch = first;
    let mut batched = gathered;
    loop {
        let done = match body.next().await {
            None => true,
            Some(Err(e)) => {
                failure = Some(e);
                break;
            }
            Some(Ok(chunk)) => {
                batched += chunk.len();
                if !chunk.is_empty() {
                    batch.push(chunk);
                }
                false
            }
        };
        if batched >= INGEST_BATCH || (done && !batch.is_empty()) {
            let full: Batch = Arc::new(std::mem::take(&mut batch));
            batched = 0;
            // A refused push means the writer failed; its error is reported below.
            if !writer.push(Some(full.clone())).await || !hashing.push(full).await {
                break;
            }
        }
        if done {
            break;
        }
    }
    // The end: the last buffer is written and the file cut at its real length.
    writer.push(None).await;
    let written = match writer.finish().await {
        Ok(Writer::Finished(written)) => written,
        Ok(_) => {
            return Err(Error::internal(
                "writing upload data",
                "the writer did not end",
            ))
        }
        Err(e) => return Err(Error::io("writing upload data", e)),
    };
    let hasher = hashing
        .finish()
        .await
        .map_err(|e| Error::io("hashing upload data", e))?;
    match failure {
        Some(e) => Err(e),
        None => Ok((hasher, written)),
    }
}

/// A list of body frames, shared by the hashing and writing jobs.
type Batch = Arc<Vec<Bytes>>;

/// The writing side of an upload: opened by its first batch (in the blocking job, as
/// opening may read back a partial block), finished by `None`.
enum Writer {
    Closed {
        path: PathBuf,
        size: u64,
        direct_io: bool,
    },
    Open(DirectAppender),
    Finished(u64),
}

impl Writer {
    fn step(&mut self, batch: Option<Batch>) -> io::Result<()> {
        if let Writer::Closed {
            path,
            size,
            direct_io,
        } = self
        {
            *self = Writer::Open(DirectAppender::open(path, *size, *direct_io)?);
        }
        let Writer::Open(out) = self else {
            return Err(io::Error::other("upload data after its end"));
        };
        match batch {
            Some(batch) => {
                for chunk in batch.iter() {
                    out.write(chunk)?;
                }
            }
            None => {
                if let Writer::Open(out) = std::mem::replace(self, Writer::Finished(0)) {
                    *self = Writer::Finished(out.finish()?);
                }
            }
        }
        Ok(())
    }
}

impl FsBlobStore {
    /// Opens (creating) the store under `root` and removes temp files left by a crash.
    pub async fn open(root: impl Into<PathBuf>) -> Result<FsBlobStore> {
        let root = root.into();
        let dirs = root.clone();
        blocking("preparing the storage directory", move || {
            for sub in ["blobs", "uploads", "tmp"] {
                std::fs::create_dir_all(dirs.join(sub))?;
            }
            // Every fan-out directory exists (durably) from the start, so publishing a blob
            // fsyncs only the directory it lands in.
            for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
                let base = dirs.join("blobs").join(algorithm.as_str());
                for byte in 0..=255u8 {
                    std::fs::create_dir_all(base.join(format!("{byte:02x}")))?;
                }
                sync_dir(&base)?;
            }
            sync_dir(&dirs.join("blobs"))?;
            sync_dir(&dirs)?;
            for entry in std::fs::read_dir(dirs.join("tmp"))? {
                let path = entry?.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
            flatten_session_dirs(&dirs.join("uploads"))
        })
        .await?;
        Ok(FsBlobStore {
            root,
            sessions: Mutex::new(HashMap::new()),
            direct_io: true,
            sync: true,
        })
    }

    /// Chooses whether upload data, and downloads of blobs not in the page cache, bypass
    /// the page cache (on by default; see `direct.rs` and `read.rs`).
    pub fn with_direct_io(mut self, direct_io: bool) -> FsBlobStore {
        self.direct_io = direct_io;
        self
    }

    /// Chooses whether a blob is made durable (data and directory fsynced) before it is
    /// published; on by default. Off, a blob still appears whole or not at all after a
    /// `kill -9` (it is renamed into place after verification, and the page cache survives
    /// the process), but a power loss or kernel crash can lose blobs acknowledged shortly
    /// before. That is what Distribution and zot (by default) give; it suits caches, mirrors
    /// and CI registries on disposable disks, where each fsync only costs time (two of the
    /// three a small push waits for).
    pub fn with_sync(mut self, sync: bool) -> FsBlobStore {
        self.sync = sync;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives; `None` for algorithms we never store.
    fn blob_path(&self, digest: &Digest) -> Option<PathBuf> {
        let alg = digest.algorithm()?;
        let hex = digest.encoded();
        Some(
            self.root
                .join("blobs")
                .join(alg.as_str())
                .join(&hex[..2])
                .join(hex),
        )
    }

    fn session_files(&self, id: &UploadId) -> SessionFiles {
        let uploads = self.root.join("uploads");
        SessionFiles {
            data: uploads.join(format!("{id}.data")),
            state: uploads.join(format!("{id}.json")),
        }
    }

    fn session_lock(&self, id: &UploadId) -> Arc<tokio::sync::Mutex<Option<Hot>>> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.clone()).or_default().clone()
    }

    fn forget_session(&self, id: &UploadId) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }

    /// The session's durable state. A session whose data file is gone (a commit cut short
    /// after publishing its blob) is as unknown as one never created.
    async fn read_state(&self, id: &UploadId) -> Result<SessionState> {
        let files = self.session_files(id);
        // One trip to the blocking pool for both files: this runs on every upload request.
        let stored = blocking("reading an upload state", move || load_state(&files)).await?;
        decode_state(id, stored)
    }

    /// Saves the state: as an attribute of the data file, or as the state file where the
    /// filesystem has no user attributes (then returns true).
    async fn write_state(&self, id: &UploadId, state: &SessionState) -> Result<bool> {
        let files = self.session_files(id);
        let tmp = self.root.join("tmp");
        let json =
            serde_json::to_vec(state).map_err(|e| Error::internal("encoding upload state", e))?;
        blocking("saving an upload state", move || {
            if xattr::set(&files.data, &json)? {
                return Ok(false);
            }
            write_replace(&tmp, &files.state, &json)?;
            Ok(true)
        })
        .await
    }

    /// Appends with the session lock held, starting from `hot` when this process left the
    /// session there, else from its files (after a restart or a failed append). The new
    /// size is saved when `keep_state` (a PATCH), not when the session ends with it.
    async fn append_locked(
        &self,
        id: &UploadId,
        hot: &mut Option<Hot>,
        offset: Option<u64>,
        body: ByteStream,
        keep_state: bool,
    ) -> Result<SessionState> {
        let data = self.session_files(id).data;
        // A chunk out of order leaves the session as it was, hash included.
        if let Some(h) = hot.as_ref() {
            check_offset(id, h.state.size, offset)?;
        }
        made(hot).await?;
        let (mut state, hasher, mut saved, mut attributed) = match hot.take() {
            Some(Hot {
                state,
                hasher,
                saved,
                attributed,
                making: _,
            }) => (state, hasher, saved, attributed),
            None => {
                let (state, hasher) = self.prepare_from_files(id, offset).await?;
                (state, hasher, true, true)
            }
        };
        let size = state.size;
        let ingested = ingest(data.clone(), size, self.direct_io, hasher, body).await;
        let (hasher, written) = match ingested {
            Ok(done) => done,
            Err(e) => {
                // The bytes past the acknowledged size are never read again: give their
                // space back now, or a disk that filled up mid-upload stays full until the
                // session expires.
                let _ = blocking("cutting a failed append", move || {
                    let file = std::fs::OpenOptions::new().write(true).open(&data)?;
                    if file.metadata()?.len() > size {
                        file.set_len(size)?;
                    }
                    Ok(())
                })
                .await;
                return Err(e);
            }
        };
        state.size += written;
        state.updated_ms = now_ms();
        if keep_state {
            if self.write_state(id, &state).await? {
                saved = true;
            } else {
                attributed = true;
            }
        }
        *hot = Some(Hot {
            hasher,
            state: state.clone(),
            saved,
            attributed,
            making: None,
        });
        Ok(state)
    }

    /// A session's state, checked against the client's `offset`, and the hash of its
    /// acknowledged bytes, from its files: one trip to the blocking pool.
    async fn prepare_from_files(
        &self,
        id: &UploadId,
        offset: Option<u64>,
    ) -> Result<(SessionState, Digester)> {
        let files = self.session_files(id);
        let session = id.clone();
        let prepared = blocking("preparing upload data", move || {
            let state = match decode_state(&session, load_state(&files)?) {
                Ok(state) => state,
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = check_offset(&session, state.size, offset) {
                return Ok(Err(e));
            }
            let path = files.data;
            // Bytes past `size` (an append cut short) are overwritten by this one.
            if std::fs::metadata(&path)?.len() < state.size {
                return Ok(Ok(None));
            }
            let algorithm = state.algorithm().unwrap_or_default();
            let hasher = hash_file(&path, algorithm, state.size)?;
            Ok(Ok(Some((state, hasher))))
        })
        .await??;
        match prepared {
            Some(prepared) => Ok(prepared),
            None => Err(self.lost(id).await),
        }
    }

    /// Discards a session whose data is shorter than it acknowledged (possible only after
    /// power loss, as appends are fsynced at commit) and says so.
    async fn lost(&self, id: &UploadId) -> Error {
        if let Err(e) = self.remove_session(id).await {
            return e;
        }
        Error::BlobUploadInvalid {
            session: id.to_string(),
            reason: "its data was lost when the registry stopped".into(),
        }
    }

    async fn remove_session(&self, id: &UploadId) -> Result<()> {
        let files = self.session_files(id);
        blocking("removing an upload", move || remove_session_files(&files)).await?;
        self.forget_session(id);
        Ok(())
    }

    async fn commit_locked(
        &self,
        id: &UploadId,
        hot: &mut Option<Hot>,
        expected: &Digest,
        expected_size: Option<u64>,
        last: Option<ByteStream>,
        alongside: Alongside<'_>,
    ) -> Result<BlobInfo> {
        made(hot).await?;
        let state = match last {
            // The session ends here, so its new size need not be saved: should the commit
            // fail, the bytes past the saved size are ignored, as after a cut append.
            Some(body) => self.append_locked(id, hot, None, body, false).await?,
            None => match hot.as_ref() {
                Some(h) => h.state.clone(),
                None => self.read_state(id).await?,
            },
        };
        let algorithm = algorithm_of(expected)?;
        let size = state.size;
        let files = self.session_files(id);
        let cached = hot
            .take()
            .filter(|h| h.state.size == size && h.hasher.algorithm() == algorithm);
        // Once verified, the content's digest is the expected one: its place is known now.
        let target = self
            .blob_path(expected)
            .ok_or_else(|| Error::internal("placing a blob", "digest without a path"))?;
        let spare = self.root.join("tmp").join(format!("{id}.duplicate"));
        let duplicate = spare.clone();
        let expected = expected.clone();
        let data = files.data.clone();
        // Whether a state file may be left to remove once the blob is published, and an
        // attribute to remove before it is.
        let mut saved = true;
        let mut attributed = true;
        let checked = match cached {
            // This process wrote the session's data and cut the file at its end (a failed
            // append drops the cache): nothing to look at on disk before publishing.
            Some(h) => {
                saved = h.saved;
                attributed = h.attributed;
                let actual = h.hasher.finalize();
                match verify(&expected, expected_size, &actual, size) {
                    Ok(()) => Checked::Verified(actual),
                    Err(e) => {
                        let files = files.clone();
                        blocking("discarding an upload", move || remove_session_files(&files))
                            .await?;
                        Checked::Rejected(e)
                    }
                }
            }
            None => {
                let data = data.clone();
                let files = files.clone();
                blocking("verifying an upload", move || {
                    let file = std::fs::OpenOptions::new().write(true).open(&data)?;
                    let len = file.metadata()?.len();
                    if len < size {
                        return Ok(Checked::Lost);
                    }
                    if len > size {
                        file.set_len(size)?;
                    }
                    let actual = hash_file(&data, algorithm, size)?.finalize();
                    if let Err(e) = verify(&expected, expected_size, &actual, size) {
                        remove_session_files(&files)?;
                        return Ok(Checked::Rejected(e));
                    }
                    Ok(Checked::Verified(actual))
                })
                .await?
            }
        };
        let actual = match checked {
            Checked::Lost => return Err(self.lost(id).await),
            Checked::Rejected(e) => {
                self.forget_session(id);
                return Err(e);
            }
            Checked::Verified(actual) => actual,
        };
        let sync = self.sync;
        let publish = blocking("publishing a blob", move || {
            if target.exists() {
                // Same digest, same bytes: already visible. The copy leaves the session at
                // once (a rename) and is deleted below, off the client's time.
                std::fs::rename(&data, &duplicate)?;
                return Ok(Published::Duplicate);
            }
            // The hash came from the bytes as they were written; the file must still hold
            // all of them (the commit from memory above has not looked).
            let file = std::fs::File::open(&data)?;
            if file.metadata()?.len() != size {
                return Ok(Published::Lost);
            }
            // The session's state has no place on the blob.
            if attributed {
                xattr::remove(&data);
            }
            // Durable before it can be published (the data went to the device during
            // ingest; this flushes its metadata and the device's cache).
            if sync {
                file.sync_data()?;
            }
            drop(file);
            let parent = target.parent().unwrap_or(&target);
            ensure_dir(parent, sync)?;
            std::fs::rename(&data, &target)?;
            if sync {
                sync_dir(parent)?;
            }
            Ok(Published::New)
        });
        let (published, alongside) = tokio::join!(publish, alongside);
        let duplicate = match published? {
            Published::Lost => return Err(self.lost(id).await),
            Published::New => false,
            Published::Duplicate => true,
        };
        // With its data gone the session already reads as unknown; removing its state file
        // and a duplicate is bookkeeping the client need not wait for (a crash before it
        // leaves a state file that the expiry sweep removes, and `tmp/` is emptied at
        // start). A session that never saved its state (a monolithic push) has none.
        self.forget_session(id);
        if saved || duplicate {
            let state = files.state;
            tokio::task::spawn_blocking(move || {
                let _ = std::fs::remove_file(state);
                let _ = std::fs::remove_file(spare);
            });
        }
        alongside?;
        Ok(BlobInfo {
            digest: actual,
            size,
        })
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        let Some(path) = self.blob_path(digest) else {
            return Ok(None);
        };
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("looking up a blob", e)),
        }
    }

    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead> {
        let unknown = || Error::BlobUnknown {
            digest: digest.clone(),
        };
        let path = self.blob_path(digest).ok_or_else(unknown)?;
        let direct_io = self.direct_io;
        // The trip that opens the file also reads the first chunk (see `read::start`).
        let opened = blocking("opening a blob", move || {
            let file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let size = file.metadata()?.len();
            let started = match range {
                Some(r) => r.resolve(size),
                None => Ok(0..size),
            }
            .map(|range| (range.clone(), read::start(file, range, direct_io)));
            Ok(Some((size, started)))
        })
        .await?;
        let (size, started) = opened.ok_or_else(unknown)?;
        let (range, started) = started?;
        Ok(BlobRead {
            size,
            range,
            body: started.into_stream(),
        })
    }

    async fn delete(&self, digest: &Digest) -> Result<()> {
        let unknown = || Error::BlobUnknown {
            digest: digest.clone(),
        };
        let path = self.blob_path(digest).ok_or_else(unknown)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(unknown()),
            Err(e) => Err(Error::io("deleting a blob", e)),
        }
    }

    async fn put(&self, expected: &Digest, bytes: Bytes) -> Result<BlobInfo> {
        let algorithm = algorithm_of(expected)?;
        let size = bytes.len() as u64;
        let hashed = bytes.clone();
        let actual = blocking("hashing content", move || {
            Ok(Digest::of_with(algorithm, &hashed))
        })
        .await?;
        verify(expected, None, &actual, size)?;
        let target = self
            .blob_path(&actual)
            .ok_or_else(|| Error::internal("placing a blob", "digest without a path"))?;
        let tmp = self.root.join("tmp");
        let sync = self.sync;
        blocking("storing content", move || {
            if target.exists() {
                return Ok(());
            }
            ensure_dir(target.parent().unwrap_or(&target), sync)?;
            write_atomic(&tmp, &target, &bytes, sync)
        })
        .await?;
        Ok(BlobInfo {
            digest: actual,
            size,
        })
    }

    async fn upload_create(&self, algorithm: Option<Algorithm>) -> Result<UploadStatus> {
        let id = UploadId::random();
        let state = SessionState {
            size: 0,
            algorithm: algorithm.map(|a| a.as_str().to_owned()),
            updated_ms: now_ms(),
        };
        // Only a session with a chosen algorithm needs a state file from the start (one
        // without reads as fresh: nothing acknowledged, the default algorithm).
        let json = match algorithm {
            Some(_) => Some(
                serde_json::to_vec(&state)
                    .map_err(|e| Error::internal("encoding upload state", e))?,
            ),
            None => None,
        };
        let saved = json.is_some();
        let files = self.session_files(&id);
        let tmp = self.root.join("tmp");
        // The files are made in the background, while the answer travels to the client and
        // its first PATCH or PUT comes back: that request waits for them (see [`made`]) and
        // reports a failure. Creating a file took 7-180 µs where we measured (ext4 without a
        // journal, slowest after many deletions), plus a trip to the blocking pool. A session whose files were not made yet is lost
        // if the registry stops, as one nothing was appended to would be after a power loss.
        let (done, making) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            // The state first: the session exists once its data file does.
            let made = (|| {
                if let Some(json) = json {
                    write_replace(&tmp, &files.state, &json)?;
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&files.data)
                    .map(drop)
            })();
            let _ = done.send(made);
        });
        // The session's first append or commit starts from here, without reading it back.
        let hot = Hot {
            hasher: Digester::new(algorithm.unwrap_or_default()),
            state: state.clone(),
            saved,
            attributed: false,
            making: Some(making),
        };
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(Some(hot))));
        Ok(state.status(&id))
    }

    async fn upload_append(
        &self,
        id: &UploadId,
        offset: Option<u64>,
        body: ByteStream,
    ) -> Result<u64> {
        let lock = self.session_lock(id);
        let mut hot = lock.lock().await;
        let result = self.append_locked(id, &mut hot, offset, body, true).await;
        if matches!(result, Err(Error::BlobUploadUnknown { .. })) {
            self.forget_session(id);
        }
        Ok(result?.size)
    }

    async fn upload_status(&self, id: &UploadId) -> Result<UploadStatus> {
        let lock = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        // A session this process holds answers from memory, unless an append holds it.
        if let Some(Ok(held)) = lock.as_ref().map(|l| l.try_lock()) {
            if let Some(h) = held.as_ref() {
                return Ok(h.state.status(id));
            }
        }
        match (self.read_state(id).await, lock) {
            (Ok(state), _) => Ok(state.status(id)),
            // Its files may still be in the making, with the append that waits for them
            // holding the session: ask it once that append is done.
            (Err(Error::BlobUploadUnknown { .. }), Some(lock)) => {
                match lock.lock().await.as_ref() {
                    Some(h) => Ok(h.state.status(id)),
                    None => Ok(self.read_state(id).await?.status(id)),
                }
            }
            (Err(e), _) => Err(e),
        }
    }

    async fn upload_commit(
        &self,
        id: &UploadId,
        expected: &Digest,
        expected_size: Option<u64>,
        last: Option<ByteStream>,
    ) -> Result<BlobInfo> {
        let nothing = Box::pin(async { Ok(()) });
        self.upload_commit_alongside(id, expected, expected_size, last, nothing)
            .await
    }

    async fn upload_commit_alongside(
        &self,
        id: &UploadId,
        expected: &Digest,
        expected_size: Option<u64>,
        last: Option<ByteStream>,
        alongside: Alongside<'_>,
    ) -> Result<BlobInfo> {
        algorithm_of(expected)?;
        let lock = self.session_lock(id);
        let mut hot = lock.lock().await;
        let result = self
            .commit_locked(id, &mut hot, expected, expected_size, last, alongside)
            .await;
        if matches!(result, Err(Error::BlobUploadUnknown { .. })) {
            self.forget_session(id);
        }
        result
    }

    async fn upload_cancel(&self, id: &UploadId) -> Result<()> {
        let lock = self.session_lock(id);
        let mut held = lock.lock().await;
        // Files still in the making are waited for, so none appear after the removal.
        let _ = made(&mut held).await;
        // Whoever waits on this lock next must find the session gone.
        *held = None;
        if let Err(e) = self.read_state(id).await {
            self.forget_session(id);
            return Err(e);
        }
        self.remove_session(id).await
    }

    async fn expire_uploads(&self, idle: Duration) -> Result<usize> {
        let uploads = self.root.join("uploads");
        let ids = blocking("listing uploads", move || {
            let mut ids = std::collections::BTreeSet::new();
            for entry in std::fs::read_dir(&uploads)? {
                if let Some(name) = entry?.file_name().to_str() {
                    // A state file without data (a commit cut short) is swept too.
                    let id = name
                        .strip_suffix(".data")
                        .or_else(|| name.strip_suffix(".json"));
                    if let Some(id) = id.and_then(|id| id.parse::<UploadId>().ok()) {
                        ids.insert(id);
                    }
                }
            }
            Ok(ids)
        })
        .await?;
        // Sessions whose files are still in the making, or failed to be made and were
        // never asked for again, are only in memory.
        let in_memory: Vec<UploadId> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|id| !ids.contains(*id))
            .cloned()
            .collect();
        let cutoff = now_ms().saturating_sub(idle.as_millis() as u64);
        let mut expired = 0;
        let listed = ids.into_iter().map(|id| (id, true));
        for (id, on_disk) in listed.chain(in_memory.into_iter().map(|id| (id, false))) {
            let lock = self.session_lock(&id);
            // A session busy with an append is not idle.
            let Ok(mut held) = lock.try_lock() else {
                continue;
            };
            let stale = match held.as_ref() {
                // Memory knows best: a session's files may be older than its last use.
                Some(h) => h.state.updated_ms <= cutoff,
                None => match self.read_state(&id).await {
                    Ok(state) => state.updated_ms <= cutoff,
                    Err(Error::BlobUploadUnknown { .. }) => true, // no state: never usable
                    Err(e) => return Err(e),
                },
            };
            if stale {
                let was_held = held.is_some();
                let _ = made(&mut held).await;
                *held = None;
                self.remove_session(&id).await?;
                if on_disk || was_held {
                    expired += 1;
                }
            }
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn reads_stream_in_bounded_chunks_rather_than_whole_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let data: Vec<u8> = (0..3 * READ_CHUNK + 5).map(|i| (i % 251) as u8).collect();
        let d = Digest::of(&data);
        store.put(&d, Bytes::from(data.clone())).await.unwrap();
        let read = store.read(&d, None).await.unwrap();
        let parts: Vec<Bytes> = read.body.try_collect().await.unwrap();
        assert!(parts.len() >= 4, "{} parts", parts.len());
        assert!(parts.iter().all(|p| p.len() <= READ_CHUNK));
        assert_eq!(parts.concat(), data);
    }

    #[tokio::test]
    async fn range_reads_cross_buffer_boundaries_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let data: Vec<u8> = (0..2 * READ_CHUNK + 9).map(|i| (i % 241) as u8).collect();
        let d = Digest::of(&data);
        store.put(&d, Bytes::from(data.clone())).await.unwrap();
        let (start, end) = (READ_CHUNK as u64 - 3, 2 * READ_CHUNK as u64 + 4);
        let range = ByteRange::From {
            start,
            end: Some(end),
        };
        // Cached (just written), then cold (as after a direct write): mapped, then read
        // with direct I/O from block-aligned spans around the unaligned range.
        for evict in [false, true] {
            if evict {
                let file = std::fs::File::open(store.blob_path(&d).unwrap()).unwrap();
                file.sync_all().unwrap();
                use std::os::fd::AsRawFd;
                // SAFETY: advice on a descriptor we own; clean pages are simply dropped.
                let rc = unsafe {
                    libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED)
                };
                assert_eq!(rc, 0);
            }
            let read = store.read(&d, Some(range)).await.unwrap();
            assert_eq!(read.range, start..end + 1);
            let parts: Vec<Bytes> = read.body.try_collect().await.unwrap();
            assert_eq!(parts.concat(), data[start as usize..=end as usize]);
        }
    }

    /// Cuts a session's data file to `len` bytes behind the store's back.
    fn cut_data(store: &FsBlobStore, id: &UploadId, len: u64) {
        let data = store.session_files(id).data;
        let file = std::fs::OpenOptions::new().write(true).open(data).unwrap();
        file.set_len(len).unwrap();
    }

    #[tokio::test]
    async fn session_that_lost_acknowledged_data_is_invalid_and_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let s = store.upload_create(None).await.unwrap();
        let body = futures::stream::iter([Ok(Bytes::from_static(b"abcdef"))]).boxed();
        store.upload_append(&s.id, None, body).await.unwrap();
        // As after power loss: the state survived, the tail of the data did not.
        cut_data(&store, &s.id, 2);
        let err = store
            .upload_commit(&s.id, &Digest::of(b"abcdef"), None, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::BlobUploadInvalid { session, .. } if session == s.id.as_str()),
            "{err}"
        );
        assert_eq!(
            store.upload_status(&s.id).await.unwrap_err().code(),
            "BLOB_UPLOAD_UNKNOWN"
        );
        assert_eq!(store.stat(&Digest::of(b"abcdef")).await.unwrap(), None);
    }

    /// Appending after a file that lost acknowledged bytes would leave zeros inside data
    /// already hashed: the append fails instead, and the session is then found lost.
    #[tokio::test]
    async fn an_append_after_acknowledged_data_was_lost_publishes_nothing() {
        // A small body (written in one trip) and a large one (through the pipeline).
        for tail in [vec![1u8; 100], vec![2u8; 3 * INGEST_BATCH]] {
            let dir = tempfile::tempdir().unwrap();
            let store = FsBlobStore::open(dir.path()).await.unwrap();
            let s = store.upload_create(None).await.unwrap();
            let head = vec![9u8; 4096];
            let body = futures::stream::iter([Ok(Bytes::from(head.clone()))]).boxed();
            store.upload_append(&s.id, None, body).await.unwrap();
            cut_data(&store, &s.id, 0);
            let body = futures::stream::iter([Ok(Bytes::from(tail.clone()))]).boxed();
            assert!(store.upload_append(&s.id, None, body).await.is_err());
            let whole = [head, tail].concat();
            let digest = Digest::of(&whole);
            let err = store
                .upload_commit(&s.id, &digest, None, None)
                .await
                .unwrap_err();
            assert_eq!(err.code(), "BLOB_UPLOAD_INVALID", "{err}");
            assert_eq!(store.stat(&digest).await.unwrap(), None);
        }
    }

    fn one(bytes: &'static [u8]) -> ByteStream {
        futures::stream::iter([Ok(Bytes::from_static(bytes))]).boxed()
    }

    /// A store in a temporary root with one upload session that acknowledged `abc`.
    async fn session_holding_abc() -> (tempfile::TempDir, FsBlobStore, UploadStatus) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let s = store.upload_create(None).await.unwrap();
        store
            .upload_append(&s.id, Some(0), one(b"abc"))
            .await
            .unwrap();
        (dir, store, s)
    }

    /// A PATCH saves the session's state as an attribute of its data file, with no state
    /// file; a restarted store reads it from there, and the published blob has none.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_patch_keeps_the_state_on_the_data_file() {
        let (dir, store, s) = session_holding_abc().await;
        let files = store.session_files(&s.id);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![files.data.file_name().unwrap().to_owned()]);
        let saved = xattr::get(&files.data)
            .unwrap()
            .expect("the state attribute");
        let state: SessionState = serde_json::from_slice(&saved).unwrap();
        assert_eq!(state.size, 3);
        let fresh = FsBlobStore::open(dir.path()).await.unwrap();
        assert_eq!(fresh.upload_status(&s.id).await.unwrap().size, 3);
        let info = finish_abcdef(&fresh, &s).await;
        let blob = fresh.blob_path(&info.digest).unwrap();
        assert_eq!(std::fs::read(&blob).unwrap(), b"abcdef");
        assert_eq!(xattr::get(&blob).unwrap(), None, "no state on the blob");
    }

    /// Appends "def" at 3 to the session of [`session_holding_abc`] and commits "abcdef".
    async fn finish_abcdef(store: &FsBlobStore, s: &UploadStatus) -> BlobInfo {
        store
            .upload_append(&s.id, Some(3), one(b"def"))
            .await
            .unwrap();
        let info = store
            .upload_commit(&s.id, &Digest::of(b"abcdef"), Some(6), None)
            .await
            .unwrap();
        assert_eq!(info.size, 6);
        info
    }

    #[tokio::test]
    async fn append_after_a_torn_write_ignores_unacknowledged_bytes() {
        let (dir, store, s) = session_holding_abc().await;
        // Simulate a crash mid-append: bytes on disk beyond the acknowledged size.
        let data = store.session_files(&s.id).data;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&data)
            .unwrap();
        f.write_all(b"GARBAGE").unwrap();
        let fresh = FsBlobStore::open(dir.path()).await.unwrap();
        assert_eq!(fresh.upload_status(&s.id).await.unwrap().size, 3);
        let info = finish_abcdef(&fresh, &s).await;
        assert_eq!(
            std::fs::read(fresh.blob_path(&info.digest).unwrap()).unwrap(),
            b"abcdef"
        );
    }

    #[tokio::test]
    async fn a_failed_append_gives_back_the_space_of_its_unacknowledged_bytes() {
        let (_dir, store, s) = session_holding_abc().await;
        // 2 MiB arrive (past the inline batch, through the writing job), then the body
        // fails, as when the disk fills up or the client goes away.
        let pieces: Vec<Result<Bytes>> = vec![
            Ok(Bytes::from(vec![7u8; 1 << 20])),
            Ok(Bytes::from(vec![8u8; 1 << 20])),
            Err(Error::io("receiving", io::Error::from_raw_os_error(28))),
        ];
        let failed = store
            .upload_append(&s.id, Some(3), futures::stream::iter(pieces).boxed())
            .await
            .expect_err("the body failed");
        assert!(failed.is_storage_full(), "{failed}");
        let data = store.session_files(&s.id).data;
        assert_eq!(
            std::fs::metadata(&data).unwrap().len(),
            3,
            "space given back"
        );
        // The session goes on from what was acknowledged.
        assert_eq!(store.upload_status(&s.id).await.unwrap().size, 3);
        finish_abcdef(&store, &s).await;
    }

    #[tokio::test]
    async fn committing_content_already_stored_ends_the_session_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let digest = Digest::of(b"same bytes");
        for _ in 0..2 {
            let s = store.upload_create(None).await.unwrap();
            let body = futures::stream::iter([Ok(Bytes::from_static(b"same bytes"))]).boxed();
            let info = store
                .upload_commit(&s.id, &digest, Some(10), Some(body))
                .await
                .unwrap();
            assert_eq!(info.size, 10);
            // Ended at once, though its directory is removed in the background.
            assert_eq!(
                store.upload_status(&s.id).await.unwrap_err().code(),
                "BLOB_UPLOAD_UNKNOWN"
            );
        }
        let read = store.read(&digest, None).await.unwrap();
        let parts: Vec<Bytes> = read.body.try_collect().await.unwrap();
        assert_eq!(parts.concat(), b"same bytes");
        let leftovers = || {
            let count = |sub: &str| std::fs::read_dir(dir.path().join(sub)).unwrap().count();
            count("uploads") + count("tmp")
        };
        for _ in 0..200 {
            if leftovers() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} files left in uploads/ and tmp/", leftovers());
    }
}
