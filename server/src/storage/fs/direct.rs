//! Appending upload data with direct I/O (`O_DIRECT`): bytes go from one aligned buffer
//! straight to the device, bypassing the page cache.
//!
//! Why: on the machines we measured, filling the page cache is the slowest part of a push
//! (allocating cache pages ran at ~1 GB/s, and the fsync before a blob is published then
//! waited for the whole blob's writeback), while direct writes of a few MiB ran at
//! 1.4–1.9 GB/s and leave nothing to flush at commit. A registry ingesting large layers
//! also should not evict the blobs it is serving from the page cache.
//!
//! Direct I/O needs buffer address, file offset and length aligned to the device's block
//! size. The appender keeps the file's last partial block in its buffer (reading it back
//! when a session resumes at an unaligned size), pads the final write to a whole block and
//! then truncates the file to its real length. A crash between the two leaves bytes past
//! the acknowledged size, which the session logic already ignores and truncates. Where the
//! filesystem refuses direct I/O (`EINVAL`: tmpfs on old kernels, some network and FUSE
//! filesystems), the appender falls back to ordinary buffered writes.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Alignment for direct I/O: the largest logical block size in common use (4 KiB drives;
/// 512-byte devices accept it too).
pub const ALIGN: usize = 4096;

/// Size of one write: large enough that per-request cost vanishes, small enough to keep
/// RSS low during a push (measured: 1, 2 and 4 MiB writes gave the same push speed, as the
/// writes overlap hashing; 4 MiB cost 2 MiB more peak RSS than 1 MiB).
pub const WRITE_SIZE: usize = 1 << 20;

/// The smallest write handed to the write-behind job before a buffer is full, when that
/// job is idle. Writing as soon as there is something to write lets the device work while
/// the body is still arriving, so the write left after the last byte is short; while the
/// device is busy, data piles up and writes grow to [`WRITE_SIZE`] on their own (64 MiB
/// PUT p50 53–58 → 47–53 ms in alternating runs).
const EARLY_WRITE: usize = 256 << 10;

/// Aligned buffers kept for reuse by uploads and by cold reads of downloads (zeroing and
/// faulting in 1 MiB costs about as much as writing it); bounds what idle transfers hold at
/// a few MiB.
const POOLED_BUFFERS: usize = 6;

static POOL: std::sync::Mutex<Vec<AlignedBuf>> = std::sync::Mutex::new(Vec::new());

/// A [`WRITE_SIZE`] buffer from the pool, or a new one. Its contents are arbitrary.
fn pooled() -> AlignedBuf {
    let reused = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop();
    reused.unwrap_or_else(|| AlignedBuf::new(WRITE_SIZE))
}

/// Returns a buffer to the pool, or frees it when the pool is full.
fn recycle(buf: AlignedBuf) {
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if pool.len() < POOLED_BUFFERS && buf.len() == WRITE_SIZE {
        pool.push(buf);
    }
}

/// A pooled [`WRITE_SIZE`] buffer that goes back to the pool when dropped: a download's
/// chunk read with direct I/O is handed to the socket as `Bytes` owning one of these.
pub struct PooledBuf(Option<AlignedBuf>);

impl PooledBuf {
    pub fn take() -> PooledBuf {
        PooledBuf(Some(pooled()))
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.0.as_mut().map_or(&mut [], |b| b.as_mut_slice())
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |b| b.as_slice())
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.0.take() {
            recycle(buf);
        }
    }
}

/// One block of the aligned buffer; a `Vec` of these is aligned without unsafe allocation.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Block([u8; ALIGN]);

/// A heap buffer whose address and length are multiples of [`ALIGN`].
pub struct AlignedBuf {
    blocks: Vec<Block>,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes rounded up to whole blocks.
    pub fn new(len: usize) -> AlignedBuf {
        AlignedBuf {
            blocks: vec![Block([0; ALIGN]); len.div_ceil(ALIGN)],
        }
    }

    pub fn len(&self) -> usize {
        self.blocks.len() * ALIGN
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `Block` is `repr(C)` plain bytes without padding, so the blocks are one
        // contiguous, initialised run of `len()` bytes.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.len()) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; the borrow of `self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<u8>(), self.len()) }
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Opens `path` for writing, with `O_DIRECT` when asked and the filesystem supports it; the
/// flag says whether it did.
fn open_direct(path: &Path, direct: bool) -> io::Result<(File, bool)> {
    #[cfg(target_os = "linux")]
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            Ok(file) => return Ok((file, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((OpenOptions::new().write(true).open(path)?, false))
}

/// Turns `O_DIRECT` off on an open file, for filesystems that accept the flag at open but
/// refuse the writes.
#[cfg(target_os = "linux")]
fn clear_direct(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn clear_direct(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Appends to a file whose first `size` bytes are kept, bypassing the page cache. The
/// caller copies data into one aligned buffer while a write-behind job writes the buffer
/// before it to the device, so copying (and the hashing next to it) and the device write
/// overlap (writing in the caller instead made pushes of 64 MiB and 1 GiB 5–10% slower).
///
/// The write-behind job runs on the blocking pool only while buffers wait, never waiting
/// for the caller. The caller never waits for the job to be scheduled either: with no
/// buffer free, it writes a waiting buffer itself, so a saturated pool cannot leave every
/// uploader blocked on a write no thread is left to run.
pub struct DirectAppender {
    buf: AlignedBuf,
    /// Bytes of `buf` holding data; `buf[..filled]` belongs at file offset `at`.
    filled: usize,
    /// File offset of `buf[0]`; a multiple of [`ALIGN`].
    at: u64,
    /// Bytes appended through this appender.
    appended: u64,
    /// Buffers in use besides `buf` (waiting, being written, or free): at most one.
    spare: usize,
    device: Arc<Device>,
}

/// The file and the buffers on their way to it, shared with the write-behind job.
struct Device {
    file: File,
    /// Whether direct writes are still used (cleared after the filesystem refuses one).
    direct: AtomicBool,
    state: Mutex<DeviceState>,
    /// Signalled whenever a write ends or the job stops.
    progress: Condvar,
}

#[derive(Default)]
struct DeviceState {
    waiting: VecDeque<Job>,
    free: Vec<AlignedBuf>,
    /// Writes under way (by the job or by the caller helping).
    writing: usize,
    /// A write-behind job is scheduled or running.
    job: bool,
    failed: Option<io::Error>,
}

/// A full buffer: `buf[..len]` belongs at file offset `at`.
struct Job {
    buf: AlignedBuf,
    len: usize,
    at: u64,
}

impl DirectAppender {
    /// Opens `path` to append after its first `size` bytes, with direct I/O when `direct`.
    /// The file must be at least `size` bytes long; anything past `size` is overwritten
    /// (and cut at [`finish`]).
    ///
    /// [`finish`]: DirectAppender::finish
    pub fn open(path: &Path, size: u64, direct: bool) -> io::Result<DirectAppender> {
        let (file, direct) = open_direct(path, direct)?;
        ensure_holds(&file, size)?;
        let mut buf = pooled();
        let at = size - size % ALIGN as u64;
        let filled = (size - at) as usize;
        if filled > 0 {
            // The partial last block is rewritten whole; a buffered read is fine here (the
            // kernel drops cached pages a direct write overlaps).
            File::open(path)?.read_exact_at(&mut buf.as_mut_slice()[..filled], at)?;
        }
        Ok(DirectAppender {
            buf,
            filled,
            at,
            appended: 0,
            spare: 0,
            device: Arc::new(Device {
                file,
                direct: AtomicBool::new(direct),
                state: Mutex::new(DeviceState::default()),
                progress: Condvar::new(),
            }),
        })
    }

    /// Appends `data`, handing each full buffer to the write-behind job, and a partly
    /// filled one too when the job is idle (see [`EARLY_WRITE`]).
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.appended += data.len() as u64;
        while !data.is_empty() {
            let room = self.buf.len() - self.filled;
            let n = room.min(data.len());
            self.buf.as_mut_slice()[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == self.buf.len() {
                self.hand_off(self.filled)?;
            }
        }
        if self.filled >= EARLY_WRITE && self.device_idle() {
            self.hand_off(self.filled - self.filled % ALIGN)?;
        }
        Ok(())
    }

    /// Queues `buf[..len]` for writing (`len` is a multiple of [`ALIGN`]) and continues in
    /// the next buffer, carrying over the bytes past `len`.
    fn hand_off(&mut self, len: usize) -> io::Result<()> {
        let mut next = self.next_buffer()?;
        let rest = self.filled - len;
        next.as_mut_slice()[..rest].copy_from_slice(&self.buf.as_slice()[len..self.filled]);
        let job = Job {
            buf: std::mem::replace(&mut self.buf, next),
            len,
            at: self.at,
        };
        self.at += len as u64;
        self.filled = rest;
        self.queue(job)
    }

    /// Whether a buffer handed off now would be written at once, and the next one to fill
    /// is at hand.
    fn device_idle(&self) -> bool {
        if self.spare == 0 {
            return true;
        }
        let state = self.device.lock();
        state.waiting.is_empty() && state.writing == 0 && !state.free.is_empty()
    }

    /// Writes what is buffered, waits for every write and cuts the file at its real end.
    /// Returns the number of bytes appended. Not durable: the caller fsyncs before
    /// publishing.
    pub fn finish(mut self) -> io::Result<u64> {
        self.settle()?;
        let end = self.at + self.filled as u64;
        if self.filled > 0 {
            // Direct writes cover whole blocks: pad with zeros, then truncate.
            let padded = self.filled.next_multiple_of(ALIGN);
            self.buf.as_mut_slice()[self.filled..padded].fill(0);
            self.device.write(&self.buf, self.filled, self.at)?;
        }
        if self.device.file.metadata()?.len() != end {
            self.device.file.set_len(end)?;
        }
        Ok(self.appended)
    }

    /// A buffer to fill next: the pool's while this appender has only one, else one the
    /// job has written. With none written yet, the caller writes a waiting one itself.
    fn next_buffer(&mut self) -> io::Result<AlignedBuf> {
        if self.spare == 0 {
            self.spare = 1;
            return Ok(pooled());
        }
        let mut state = self.device.lock();
        loop {
            if let Some(e) = state.failed.take() {
                return Err(e);
            }
            if let Some(buf) = state.free.pop() {
                return Ok(buf);
            }
            let (relocked, written) = self.device.write_waiting(state);
            state = relocked;
            match written {
                Some((buf, Ok(()))) => return Ok(buf),
                Some((buf, Err(e))) => {
                    state.free.push(buf); // every buffer stays accounted for
                    return Err(e);
                }
                // The job is writing it: a disk write, bounded.
                None => state = self.device.wait(state),
            }
        }
    }

    /// Hands `job` to the write-behind job, starting one if none is scheduled.
    fn queue(&mut self, job: Job) -> io::Result<()> {
        let mut state = self.device.lock();
        if let Some(e) = state.failed.take() {
            return Err(e);
        }
        state.waiting.push_back(job);
        if !state.job {
            state.job = true;
            drop(state);
            let device = Arc::clone(&self.device);
            let run = move || device.write_behind();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(run)),
                Err(_) => drop(std::thread::spawn(run)),
            }
        }
        Ok(())
    }

    /// Writes whatever still waits and waits for writes under way: afterwards no write of
    /// this appender lands on the file.
    fn settle(&mut self) -> io::Result<()> {
        let mut failure = None;
        let mut state = self.device.lock();
        loop {
            let (relocked, written) = self.device.write_waiting(state);
            state = relocked;
            if let Some((buf, written)) = written {
                recycle(buf);
                if let Err(e) = written {
                    // The rest is not worth writing; the job's write under way still is
                    // waited for below.
                    failure.get_or_insert(e);
                    for job in state.waiting.drain(..) {
                        recycle(job.buf);
                    }
                }
                continue;
            }
            if state.writing == 0 {
                for buf in state.free.drain(..) {
                    recycle(buf);
                }
                return match failure.or_else(|| state.failed.take()) {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
            }
            state = self.device.wait(state);
        }
    }
}

impl Device {
    fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a write ends or the job stops.
    fn wait<'a>(&self, state: MutexGuard<'a, DeviceState>) -> MutexGuard<'a, DeviceState> {
        self.progress.wait(state).unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the first waiting buffer and writes it with the lock released, counted in
    /// `writing` meanwhile; `None` when nothing waits. Whoever calls it (the job, or an
    /// appender helping) decides where the buffer goes next.
    fn write_waiting<'a>(
        &'a self,
        mut state: MutexGuard<'a, DeviceState>,
    ) -> (
        MutexGuard<'a, DeviceState>,
        Option<(AlignedBuf, io::Result<()>)>,
    ) {
        let Some(job) = state.waiting.pop_front() else {
            return (state, None);
        };
        state.writing += 1;
        drop(state);
        let written = self.write(&job.buf, job.len, job.at);
        let mut state = self.lock();
        state.writing -= 1;
        (state, Some((job.buf, written)))
    }

    /// The write-behind job: writes waiting buffers until none is left.
    fn write_behind(&self) {
        let mut state = self.lock();
        loop {
            let (relocked, written) = self.write_waiting(state);
            state = relocked;
            let Some((buf, written)) = written else {
                break;
            };
            state.free.push(buf);
            if let Err(e) = written {
                state.failed = Some(e);
                break;
            }
            self.progress.notify_all();
        }
        state.job = false;
        drop(state);
        self.progress.notify_all();
    }

    /// Writes `buf[..len]` at `at`: whole blocks with direct I/O, exactly `len` bytes
    /// otherwise, switching to buffered writes for good if direct ones are refused.
    fn write(&self, buf: &AlignedBuf, len: usize, at: u64) -> io::Result<()> {
        if self.direct.load(Ordering::Relaxed) {
            let padded = len.next_multiple_of(ALIGN);
            match self.file.write_all_at(&buf.as_slice()[..padded], at) {
                Err(e) if e.raw_os_error() == Some(invalid_argument()) => {
                    clear_direct(&self.file)?;
                    self.direct.store(false, Ordering::Relaxed);
                }
                result => return result,
            }
        }
        self.file.write_all_at(&buf.as_slice()[..len], at)
    }
}

impl Drop for DirectAppender {
    /// An appender dropped unfinished (a failed upload) still waits for its writes, so no
    /// write lands after the caller has moved on (and, say, truncated the file).
    fn drop(&mut self) {
        let _ = self.settle();
        recycle(std::mem::replace(&mut self.buf, AlignedBuf::new(0)));
    }
}

/// Fails unless `file` holds at least `size` bytes: appending after a shorter file would
/// leave a hole of zeros inside data already hashed as acknowledged.
pub fn ensure_holds(file: &File, size: u64) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len < size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("upload data holds {len} bytes, {size} were acknowledged"),
        ));
    }
    Ok(())
}

fn invalid_argument() -> i32 {
    #[cfg(target_os = "linux")]
    {
        libc::EINVAL
    }
    #[cfg(not(target_os = "linux"))]
    {
        22
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes that differ at every offset within a run.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
            .collect()
    }

    #[test]
    fn appends_at_unaligned_sizes_keep_every_byte() {
        for direct in [true, false] {
            appends_keep_every_byte(direct);
        }
    }

    fn appends_keep_every_byte(direct: bool) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        std::fs::write(&path, b"").expect("create");
        let mut expected = Vec::new();
        // Sessions resuming at unaligned sizes, writes straddling buffer boundaries, and
        // an append of nothing.
        let sessions: &[&[usize]] = &[
            &[1],
            &[ALIGN - 2, 3],
            &[0],
            &[WRITE_SIZE - 7, 20, ALIGN],
            &[WRITE_SIZE * 2 + 5],
            &[13, 1, 4090],
            // Bodies arriving in pieces: early writes of unaligned amounts, with the bytes
            // past the last whole block carried into the next buffer each time.
            &[
                EARLY_WRITE + 1,
                99_999,
                300_001,
                EARLY_WRITE - 1,
                2,
                777_777,
                5,
            ],
        ];
        for (round, writes) in sessions.iter().enumerate() {
            let size = expected.len() as u64;
            let mut appender = DirectAppender::open(&path, size, direct).expect("open");
            let mut appended = 0;
            for (i, &len) in writes.iter().enumerate() {
                let data = pattern(len, (round * 16 + i) as u8);
                appender.write(&data).expect("write");
                expected.extend_from_slice(&data);
                appended += len as u64;
            }
            assert_eq!(appender.finish().expect("finish"), appended);
            let on_disk = std::fs::read(&path).expect("read back");
            assert_eq!(on_disk.len(), expected.len(), "length after round {round}");
            assert!(on_disk == expected, "content after round {round}");
        }
    }

    #[test]
    fn bytes_past_the_kept_size_are_replaced_and_cut() {
        for direct in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("data");
            // 5000 bytes on disk, of which only 4100 were acknowledged.
            std::fs::write(&path, pattern(5000, 1)).expect("create");
            let mut appender = DirectAppender::open(&path, 4100, direct).expect("open");
            appender.write(b"tail").expect("write");
            assert_eq!(appender.finish().expect("finish"), 4);
            let mut expected = pattern(4100, 1);
            expected.extend_from_slice(b"tail");
            assert!(std::fs::read(&path).expect("read back") == expected);
        }
    }

    #[test]
    fn an_appender_dropped_unfinished_has_written_what_it_was_given() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        std::fs::write(&path, b"").expect("create");
        let mut appender = DirectAppender::open(&path, 0, true).expect("open");
        let data = pattern(WRITE_SIZE * 2, 7);
        appender.write(&data).expect("write");
        // Dropping waits for the queued buffers: nothing lands after this line.
        drop(appender);
        let on_disk = std::fs::read(&path).expect("read back");
        assert_eq!(on_disk.len(), data.len(), "both full buffers were written");
        assert!(on_disk == data);
    }

    /// A device that refuses writes (`/dev/full`: ENOSPC) fails the append with that
    /// error, whether the write-behind job or the appender met it, and nothing waits
    /// forever for a buffer the failed write held.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_failing_device_write_is_reported_and_nothing_waits_forever() {
        for piece in [4 << 10, 64 << 10, WRITE_SIZE] {
            let mut appender =
                DirectAppender::open(Path::new("/dev/full"), 0, false).expect("open /dev/full");
            let data = pattern(WRITE_SIZE * 3 + 5, 1);
            let failed = data.chunks(piece).find_map(|p| appender.write(p).err());
            let e = match failed {
                Some(e) => e,
                None => appender.finish().expect_err("the device is full"),
            };
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        }
    }

    #[test]
    fn buffers_are_block_aligned() {
        let buf = AlignedBuf::new(ALIGN + 1);
        assert_eq!(buf.len(), 2 * ALIGN);
        assert_eq!(buf.as_slice().as_ptr() as usize % ALIGN, 0);
    }
}
