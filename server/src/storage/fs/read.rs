//! Reading blob chunks for download the cheapest way the page cache allows.
//!
//! - A chunk already in the page cache is sent from a read-only mapping of it: the socket
//!   copies straight from the cache, with no copy into a buffer of ours first. In a
//!   standalone loopback test, a cached 1 GiB file went out at 3.5–3.7 GiB/s this way,
//!   against 2.0–2.9 GiB/s read into a buffer first.
//! - A chunk that is not cached (blobs are written with direct I/O, so a fresh blob is
//!   not) is read with direct I/O into a pooled aligned buffer. Filling the page cache is
//!   slow on the machines we measured: an ordinary read of a cold 1 GiB blob ran at
//!   0.42–0.54 GB/s, a direct read of the same file at 1.7–2.6 GB/s, and a first download
//!   of a fresh 1 GiB blob went from 0.42–0.44 to 1.6–2.0 GiB/s.
//! - Once a download that read cold chunks has read its last one, the reader loads those
//!   chunks into the page cache ([`ChunkReader::warm`]), so the next download of a blob
//!   pulled once is served from memory: the cache admits what is pulled, off the path of
//!   the pull that caused it.
//!
//! - A download's first chunk is read by the blocking trip that opens its file
//!   ([`start`]): a cached 1 MiB pull went from ~1060 to ~1570 MiB/s without the second
//!   trip. The rest is read a few chunks ahead of the client by a blocking job that ends
//!   whenever it is far enough ahead ([`Started::into_stream`]), so no thread waits on a
//!   slow client.
//!
//! Elsewhere than Linux, with direct I/O turned off, where mapping fails or the filesystem
//! refuses direct I/O, chunks are read with ordinary reads.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;

#[cfg(target_os = "linux")]
use super::direct::{PooledBuf, ALIGN, WRITE_SIZE};
use crate::error::{Error, Result};
use crate::storage::ByteStream;

/// The size of the chunks a download is sent in (see `READ_CHUNK` in `mod.rs`).
const READ_CHUNK: u64 = super::READ_CHUNK as u64;

/// The most a direct read may span: one pooled buffer. A chunk must fit in it once its
/// start is rounded down and its end up to whole blocks, which holds for chunks that do not
/// cross a multiple of this size (see `ReadAhead::read`).
#[cfg(target_os = "linux")]
pub const DIRECT_SPAN: u64 = WRITE_SIZE as u64;

/// Reads chunks of one blob file.
pub struct ChunkReader {
    file: File,
    /// `Some(on)` while cold chunks are read with direct I/O, `on` telling whether `file`
    /// has `O_DIRECT` set now; `None` when direct reads are off or refused.
    direct: Cell<Option<bool>>,
    /// The span of the chunks read cold, to be loaded into the page cache afterwards.
    cold: Cell<Option<(u64, u64)>>,
}

impl ChunkReader {
    /// A reader of `file`; `direct` chooses direct I/O for chunks not in the page cache.
    pub fn new(file: File, direct: bool) -> ChunkReader {
        ChunkReader {
            file,
            direct: Cell::new(direct.then_some(false)),
            cold: Cell::new(None),
        }
    }

    /// The bytes of `range`, which must lie within the file.
    pub fn chunk(&self, range: Range<u64>) -> io::Result<Bytes> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        #[cfg(target_os = "linux")]
        {
            if let Some(mapped) = self.mapped_if_cached(range.clone())? {
                return Ok(mapped);
            }
            if let Some(read) = self.read_direct(range.clone())? {
                self.note_cold(&range);
                return Ok(read);
            }
        }
        self.read_buffered(range)
    }

    /// Loads the chunks read cold so far into the page cache, for the next download.
    /// Call it once the download's last chunk is read: it costs a second read of the disk
    /// and the page cache fill, which the download itself should not wait for.
    pub fn warm(&self) {
        #[cfg(target_os = "linux")]
        if let Some((start, end)) = self.cold.take() {
            use std::os::fd::AsRawFd;
            // One WILLNEED loads at most the device's readahead window (8 MiB here, kernel
            // 6.x), so the span is advised in steps of that.
            const STEP: u64 = 8 << 20;
            let mut at = start;
            while at < end {
                let len = (end - at).min(STEP);
                // SAFETY: advice on a descriptor we own, with integer arguments only.
                let rc = unsafe {
                    libc::posix_fadvise(
                        self.file.as_raw_fd(),
                        at as libc::off_t,
                        len as libc::off_t,
                        libc::POSIX_FADV_WILLNEED,
                    )
                };
                if rc != 0 {
                    return; // advice only: the next download reads cold again
                }
                at += len;
            }
        }
    }

    fn note_cold(&self, range: &Range<u64>) {
        let span = match self.cold.get() {
            Some((start, end)) => (start.min(range.start), end.max(range.end)),
            None => (range.start, range.end),
        };
        self.cold.set(Some(span));
    }

    fn read_buffered(&self, range: Range<u64>) -> io::Result<Bytes> {
        #[cfg(target_os = "linux")]
        self.set_direct(false);
        let mut buf = vec![0; (range.end - range.start) as usize];
        self.file.read_exact_at(&mut buf, range.start)?;
        Ok(Bytes::from(buf))
    }

    /// The chunk as a slice of a mapping, when every page of it is in the page cache.
    #[cfg(target_os = "linux")]
    fn mapped_if_cached(&self, range: Range<u64>) -> io::Result<Option<Bytes>> {
        let page = page_size();
        let start = range.start - range.start % page;
        let len = (range.end - start) as usize;
        // SAFETY: a blob file is immutable once published and never truncated, so the
        // mapping's contents cannot change or vanish under us (unlinking keeps the inode
        // alive while mapped).
        let map = match unsafe {
            memmap2::MmapOptions::new()
                .offset(start)
                .len(len)
                .map(&self.file)
        } {
            Ok(map) => map,
            Err(_) => return Ok(None), // e.g. a filesystem without mmap: read instead
        };
        if !resident(&map, page as usize) {
            return Ok(None);
        }
        // Map the page tables now, in one call, rather than fault per page while the
        // socket copies. If that fails (kernels before 5.14 refuse it; a page evicted since
        // `mincore` may meet a disk error, which a later fault would raise as SIGBUS and
        // kill the process), read the chunk instead.
        if map.advise(memmap2::Advice::PopulateRead).is_err() {
            return Ok(None);
        }
        let skip = (range.start - start) as usize;
        Ok(Some(Bytes::from_owner(map).slice(skip..)))
    }
}

#[cfg(target_os = "linux")]
impl ChunkReader {
    /// The chunk read with direct I/O into a pooled buffer, or `None` when direct reads are
    /// off or refused (and then off for the rest of this reader), or the chunk is too wide.
    fn read_direct(&self, range: Range<u64>) -> io::Result<Option<Bytes>> {
        let align = ALIGN as u64;
        let start = range.start - range.start % align;
        let end = range.end.div_ceil(align) * align;
        if end - start > DIRECT_SPAN || !self.set_direct(true) {
            return Ok(None);
        }
        let want = (range.end - start) as usize;
        let mut buf = PooledBuf::take();
        let space = &mut buf.as_mut_slice()[..(end - start) as usize];
        let mut got = 0;
        while got < want {
            match self.file.read_at(&mut space[got..], start + got as u64) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Accepted at `fcntl`, refused at the read: some network and FUSE
                // filesystems.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && got == 0 => {
                    self.set_direct(false);
                    self.direct.set(None);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        let skip = (range.start - start) as usize;
        Ok(Some(Bytes::from_owner(buf).slice(skip..want)))
    }

    /// Sets or clears `O_DIRECT` on the file; false when direct reads are off or the flag
    /// cannot be changed (then they stay off).
    fn set_direct(&self, on: bool) -> bool {
        use std::os::fd::AsRawFd;
        match self.direct.get() {
            None => return false,
            Some(now) if now == on => return true,
            Some(_) => {}
        }
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own, with integer arguments only.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        let flags = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
            self.direct.set(None);
            return false;
        }
        self.direct.set(Some(on));
        true
    }
}

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Whether every page of `map` is in the page cache (`mincore`).
#[cfg(target_os = "linux")]
fn resident(map: &memmap2::Mmap, page: usize) -> bool {
    let mut pages = vec![0u8; map.len().div_ceil(page)];
    // SAFETY: the address and length are those of a live mapping we own; `pages` has one
    // byte per page of it, as mincore requires.
    let rc = unsafe {
        libc::mincore(
            map.as_ptr() as *mut libc::c_void,
            map.len(),
            pages.as_mut_ptr(),
        )
    };
    rc == 0 && pages.iter().all(|p| p & 1 == 1)
}

/// A download of `range` of a blob file whose first chunk is already read: made on a
/// blocking thread (the one that opened the file), so that a blob of one chunk, and the
/// start of any other, needs no second trip to the blocking pool.
pub struct Started(Arc<ReadAhead>);

/// Reads the first chunk of `range` (blocking) and returns the download, to be streamed
/// with [`Started::into_stream`].
pub fn start(file: std::fs::File, range: Range<u64>, direct_io: bool) -> Started {
    let ahead = Arc::new(ReadAhead {
        state: Mutex::new(Ahead {
            ready: VecDeque::new(),
            reader: None,
            at: range.start,
            end: range.end,
            reading: 0,
            failed: false,
        }),
        arrived: tokio::sync::Notify::new(),
    });
    ahead.read(ChunkReader::new(file, direct_io), 1);
    Started(ahead)
}

impl Started {
    /// Streams the download, read a few chunks ahead of the client by a blocking job (see
    /// the module doc for how a chunk is read). The job ends whenever it is
    /// [`READ_AHEAD`] chunks ahead and starts again when the client takes one, so no
    /// thread waits on a slow client.
    pub fn into_stream(self) -> ByteStream {
        stream_of(self.0)
    }
}

fn stream_of(ahead: Arc<ReadAhead>) -> ByteStream {
    futures::stream::unfold(ahead, |ahead| async move {
        loop {
            // Some(item) or Some(None) (the end) once known; None after waiting.
            let found = {
                let arrived = ahead.arrived.notified();
                tokio::pin!(arrived);
                // Registered before the check, so a chunk arriving after it still wakes us.
                arrived.as_mut().enable();
                match ahead.take_ready() {
                    Some(found) => Some(found),
                    None => {
                        arrived.await;
                        None
                    }
                }
            };
            match found {
                Some(Some(item)) => return Some((item, ahead)),
                Some(None) => return None,
                None => continue,
            }
        }
    })
    .boxed()
}

/// Chunks read ahead of the client, at most this many (bounds memory per download).
const READ_AHEAD: usize = 3;

/// A download's chunks, shared by its stream and its read job.
struct ReadAhead {
    state: Mutex<Ahead>,
    /// Wakes the stream when a chunk is ready.
    arrived: tokio::sync::Notify,
}

struct Ahead {
    ready: VecDeque<Result<Bytes>>,
    /// The reader while no job runs (the job takes it along).
    reader: Option<ChunkReader>,
    /// Where the next chunk to read starts.
    at: u64,
    end: u64,
    /// Chunks being read (claimed from `at`, not yet in `ready`).
    reading: usize,
    failed: bool,
}

impl ReadAhead {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ahead> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next chunk (`Some(Some)`), the end (`Some(None)`) or nothing yet (`None`), and
    /// a read job started (on the blocking pool) if one is needed and none runs.
    fn take_ready(self: &Arc<Self>) -> Option<Option<Result<Bytes>>> {
        let mut state = self.lock();
        let next = state.ready.pop_front();
        if state.at < state.end && !state.failed {
            if let Some(reader) = state.reader.take() {
                let job = Arc::clone(self);
                tokio::task::spawn_blocking(move || job.read(reader, READ_AHEAD));
            }
        }
        match next {
            Some(item) => Some(Some(item)),
            None if (state.at >= state.end && state.reading == 0) || state.failed => Some(None),
            None => None,
        }
    }

    /// The read job: reads chunks until `ahead` are ready or all is read. After the last
    /// chunk, what was read cold is loaded into the page cache for the next download.
    fn read(&self, reader: ChunkReader, ahead: usize) {
        loop {
            let range = {
                let mut state = self.lock();
                if state.ready.len() >= ahead || state.failed || state.at >= state.end {
                    if state.at < state.end && !state.failed {
                        state.reader = Some(reader);
                        return;
                    }
                    drop(state);
                    reader.warm();
                    return;
                }
                // Chunks end at multiples of READ_CHUNK, so a chunk's block-aligned span
                // fits one direct-read buffer whatever the range's start.
                let end = state.end.min((state.at / READ_CHUNK + 1) * READ_CHUNK);
                let range = state.at..end;
                state.at = end;
                state.reading += 1;
                range
            };
            let chunk = reader
                .chunk(range)
                .map_err(|e| Error::io("reading a blob", e));
            let mut state = self.lock();
            state.reading -= 1;
            state.failed = chunk.is_err();
            state.ready.push_back(chunk);
            drop(state);
            self.arrived.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_started_download_has_its_first_chunk_read_and_streams_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("blob");
        let len = 2 * READ_CHUNK + 5;
        let data: Vec<u8> = (0..len).map(|i| (i % 249) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        for (range, chunks) in [(0..len, 3), (7..READ_CHUNK - 1, 1), (len - 3..len, 1)] {
            let started = start(File::open(&path).expect("open"), range.clone(), true);
            {
                let state = started.0.lock();
                assert_eq!(state.ready.len(), 1, "the first chunk is read at start");
                let first_end = range.end.min((range.start / READ_CHUNK + 1) * READ_CHUNK);
                assert_eq!(state.at, first_end);
                // The reader waits for the job only while chunks are left.
                assert_eq!(state.reader.is_some(), chunks > 1);
            }
            let got: Vec<Bytes> = started
                .into_stream()
                .map(|c| c.expect("chunk"))
                .collect()
                .await;
            assert_eq!(got.len(), chunks);
            assert!(got.concat() == data[range.start as usize..range.end as usize]);
        }
    }

    #[test]
    fn cached_chunks_are_mapped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..3 * 4096 + 77).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let len = data.len() as u64;
        let ranges = [
            0..len,
            0..1,
            5..4096 + 3,
            4096..2 * 4096,
            len - 1..len,
            len - 100..len,
            17..17,
        ];
        let reader = ChunkReader::new(File::open(&path).expect("open"), true);
        for range in ranges.clone() {
            let want = &data[range.start as usize..range.end as usize];
            // Cached (just written): the mapping path.
            assert_eq!(&reader.chunk(range.clone()).expect("read")[..], want);
            #[cfg(target_os = "linux")]
            if !range.is_empty() {
                let mapped = reader.mapped_if_cached(range.clone()).expect("map");
                assert_eq!(&mapped.expect("cached, so mapped")[..], want);
            }
            assert_eq!(
                &reader.read_buffered(range.clone()).expect("read")[..],
                want
            );
        }
    }

    /// Drops the file's pages from the page cache, as for a blob written with direct I/O.
    #[cfg(target_os = "linux")]
    fn evict(file: &File) {
        use std::os::fd::AsRawFd;
        file.sync_all().expect("sync");
        // SAFETY: advice on a descriptor we own; clean pages are simply dropped.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cold_chunks_are_read_directly_then_warmed_into_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("blob");
        let len = 2 * ALIGN + 300;
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let len = len as u64;
        // Unaligned starts and ends, one block, the tail past the last whole block.
        let ranges = [
            0..len,
            3..ALIGN as u64 + 1,
            ALIGN as u64..2 * ALIGN as u64,
            len - 7..len,
        ];
        for direct in [true, false] {
            for range in ranges.clone() {
                let file = File::open(&path).expect("open");
                evict(&file);
                let reader = ChunkReader::new(file, direct);
                assert!(reader
                    .mapped_if_cached(range.clone())
                    .expect("map")
                    .is_none());
                let want = &data[range.start as usize..range.end as usize];
                assert_eq!(&reader.chunk(range.clone()).expect("read")[..], want);
                if !direct {
                    assert_eq!(reader.direct.get(), None);
                    assert_eq!(reader.cold.get(), None, "buffered reads fill the cache");
                    continue;
                }
                // The test directory is on a filesystem with direct I/O (ext4 in CI).
                assert_eq!(reader.direct.get(), Some(true), "read with O_DIRECT");
                assert_eq!(reader.cold.get(), Some((range.start, range.end)));
                // O_DIRECT is cleared again for a buffered read.
                assert_eq!(
                    &reader.read_buffered(range.clone()).expect("read")[..],
                    want
                );
                assert_eq!(reader.direct.get(), Some(false));
            }
        }
        // Warming loads what was read cold, so the next download maps it from the cache.
        let file = File::open(&path).expect("open");
        evict(&file);
        let reader = ChunkReader::new(file, true);
        assert_eq!(&reader.chunk(0..len).expect("read")[..], &data[..]);
        assert!(reader.mapped_if_cached(0..len).expect("map").is_none());
        reader.warm();
        assert_eq!(reader.cold.get(), None);
        let cached = (0..200).any(|_| {
            let mapped = reader.mapped_if_cached(0..len).expect("map");
            if let Some(mapped) = mapped {
                assert_eq!(&mapped[..], &data[..]);
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            false
        });
        assert!(cached, "warmed chunks are in the page cache");
    }
}
