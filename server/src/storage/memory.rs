//! In-memory blob store for tests and demos: the same rules as the filesystem backend
//! (verify before visible, offsets checked, sessions expire), nothing durable.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use quayside_spec::grammar::{Algorithm, Digest, Digester};

use super::{
    algorithm_of, verify, BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream, UploadId,
    UploadStatus,
};
use crate::error::{Error, Result};

/// Blobs and upload sessions held in process memory.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    blobs: HashMap<Digest, Bytes>,
    uploads: HashMap<UploadId, Session>,
}

#[derive(Debug)]
struct Session {
    data: Vec<u8>,
    hasher: Digester,
    algorithm: Option<Algorithm>,
    updated: SystemTime,
}

impl Session {
    fn status(&self, id: &UploadId) -> UploadStatus {
        UploadStatus {
            id: id.clone(),
            size: self.data.len() as u64,
            algorithm: self.algorithm,
            updated: self.updated,
        }
    }
}

impl MemoryBlobStore {
    pub fn new() -> MemoryBlobStore {
        MemoryBlobStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the maps half-updated (each update is one insert or
        // remove), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn unknown(id: &UploadId) -> Error {
        Error::BlobUploadUnknown {
            session: id.to_string(),
        }
    }

    /// Collects a chunk, then appends it if the upload still ends at `offset`.
    async fn append(&self, id: &UploadId, offset: Option<u64>, body: ByteStream) -> Result<u64> {
        let start = {
            let state = self.lock();
            let s = state.uploads.get(id).ok_or_else(|| Self::unknown(id))?;
            let size = s.data.len() as u64;
            check_offset(id, size, offset)?;
            size
        };
        let chunks: Vec<Bytes> = body.try_collect().await?;
        let mut state = self.lock();
        let s = state.uploads.get_mut(id).ok_or_else(|| Self::unknown(id))?;
        // Another append may have landed while this one was receiving.
        check_offset(id, s.data.len() as u64, Some(start))?;
        for c in &chunks {
            s.hasher.update(c);
            s.data.extend_from_slice(c);
        }
        s.updated = SystemTime::now();
        Ok(s.data.len() as u64)
    }
}

/// `ChunkOutOfOrder` unless a chunk declared to start at `offset` continues the upload.
pub(super) fn check_offset(id: &UploadId, size: u64, offset: Option<u64>) -> Result<()> {
    match offset {
        Some(given) if given != size => Err(Error::ChunkOutOfOrder {
            session: id.to_string(),
            expected: size,
            given,
        }),
        _ => Ok(()),
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.lock().blobs.get(digest).map(|b| b.len() as u64))
    }

    async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobRead> {
        let blob = self
            .lock()
            .blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| Error::BlobUnknown {
                digest: digest.clone(),
            })?;
        let size = blob.len() as u64;
        let range = match range {
            Some(r) => r.resolve(size)?,
            None => 0..size,
        };
        // Ranges are bounded by the blob's length, which fits in memory, so usize holds them.
        let part = blob.slice(range.start as usize..range.end as usize);
        Ok(BlobRead {
            size,
            range,
            body: stream::once(async move { Ok(part) }).boxed(),
        })
    }

    async fn delete(&self, digest: &Digest) -> Result<()> {
        match self.lock().blobs.remove(digest) {
            Some(_) => Ok(()),
            None => Err(Error::BlobUnknown {
                digest: digest.clone(),
            }),
        }
    }

    async fn put(&self, expected: &Digest, bytes: Bytes) -> Result<BlobInfo> {
        let actual = Digest::of_with(algorithm_of(expected)?, &bytes);
        verify(expected, None, &actual, bytes.len() as u64)?;
        let size = bytes.len() as u64;
        self.lock().blobs.insert(actual.clone(), bytes);
        Ok(BlobInfo {
            digest: actual,
            size,
        })
    }

    async fn upload_create(&self, algorithm: Option<Algorithm>) -> Result<UploadStatus> {
        let id = UploadId::random();
        let session = Session {
            data: Vec::new(),
            hasher: Digester::new(algorithm.unwrap_or_default()),
            algorithm,
            updated: SystemTime::now(),
        };
        let status = session.status(&id);
        self.lock().uploads.insert(id, session);
        Ok(status)
    }

    async fn upload_append(
        &self,
        id: &UploadId,
        offset: Option<u64>,
        body: ByteStream,
    ) -> Result<u64> {
        self.append(id, offset, body).await
    }

    async fn upload_status(&self, id: &UploadId) -> Result<UploadStatus> {
        let state = self.lock();
        let s = state.uploads.get(id).ok_or_else(|| Self::unknown(id))?;
        Ok(s.status(id))
    }

    async fn upload_commit(
        &self,
        id: &UploadId,
        expected: &Digest,
        expected_size: Option<u64>,
        last: Option<ByteStream>,
    ) -> Result<BlobInfo> {
        let algorithm = algorithm_of(expected)?;
        if let Some(body) = last {
            self.append(id, None, body).await?;
        }
        let session = self
            .lock()
            .uploads
            .remove(id)
            .ok_or_else(|| Self::unknown(id))?;
        let actual = if session.hasher.algorithm() == algorithm {
            session.hasher.finalize()
        } else {
            Digest::of_with(algorithm, &session.data)
        };
        let size = session.data.len() as u64;
        verify(expected, expected_size, &actual, size)?;
        self.lock()
            .blobs
            .insert(actual.clone(), Bytes::from(session.data));
        Ok(BlobInfo {
            digest: actual,
            size,
        })
    }

    async fn upload_cancel(&self, id: &UploadId) -> Result<()> {
        match self.lock().uploads.remove(id) {
            Some(_) => Ok(()),
            None => Err(Self::unknown(id)),
        }
    }

    async fn expire_uploads(&self, idle: Duration) -> Result<usize> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let before = state.uploads.len();
        state
            .uploads
            .retain(|_, s| now.duration_since(s.updated).unwrap_or_default() < idle);
        Ok(before - state.uploads.len())
    }
}
