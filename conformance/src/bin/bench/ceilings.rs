//! What this machine allows a registry, measured in the same run as the registries: how
//! fast its disk takes durable writes, publishes a small file durably and gives back data
//! that is not cached, and how fast one loopback TCP stream carries data that is not in
//! the CPU caches.
//!
//! Why: the same workload on two hosts of one machine kind gave a 1 GiB push of 1266 and of
//! 265 MiB/s, the second host's disk taking fresh direct writes at ~300–400 MiB/s. A ratio
//! between two registries means little without the bound they ran against: a registry
//! that syncs before it answers cannot push faster than the disk writes durably. The
//! loopback stream is a reference for pulls, not a bound: our registry's cached pulls,
//! between two processes, have measured above it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::report::Throughput;
use crate::units::mib_per_s;

/// The size of each write and read, as a registry streams a blob (and as the pull client
/// reads).
const IO_SIZE: usize = 1 << 20;

/// Alignment of direct I/O buffers (covers 512-byte and 4 KiB devices).
const ALIGN: usize = 4096;

/// The loopback sender's data: larger than any CPU cache, as a blob being served is.
const SOURCE_SIZE: usize = 64 << 20;

/// Small files published durably to time one (the median is reported).
const SMALL_FILES: usize = 16;

#[derive(Serialize)]
pub struct DiskResult {
    pub bytes: u64,
    /// Fresh file, 1 MiB `O_DIRECT` writes, then `fdatasync`; None where the filesystem
    /// refuses direct I/O.
    pub direct_write_mib_per_s: Option<f64>,
    /// Fresh file, 1 MiB buffered writes, then `fdatasync`.
    pub buffered_write_mib_per_s: f64,
    /// The faster of the two: the most a push that is durable before it answers can reach.
    pub durable_write_mib_per_s: f64,
    /// Median milliseconds to publish one 1 MiB file durably as a registry publishes a
    /// small blob: create, write (direct where allowed), `fdatasync`, rename, `fsync` of
    /// the directory. Small pushes are bound by this latency rather than by throughput.
    pub small_file_ms: f64,
    /// 1 MiB over [`DiskResult::small_file_ms`]: the most a 1 MiB push can reach.
    pub small_file_mib_per_s: f64,
    /// The file read back in 1 MiB reads with none of it in the page cache (direct reads,
    /// or buffered ones after dropping the cache's pages): a first pull from disk.
    pub cold_read_mib_per_s: f64,
}

/// Measures the disk under `dir` with `size` bytes (at least 1 MiB), in fresh files it
/// removes afterwards.
pub fn disk(dir: &Path, size: u64) -> Result<DiskResult> {
    let size = size.max(IO_SIZE as u64).div_ceil(IO_SIZE as u64) * IO_SIZE as u64;
    let mut storage = vec![0u8; IO_SIZE + ALIGN];
    let offset = storage.as_ptr().align_offset(ALIGN);
    let buffer = &mut storage[offset..offset + IO_SIZE];
    buffer.copy_from_slice(&crate::blobs::pattern(IO_SIZE, 7));

    let scratch = Scratch::new(dir)?;
    let in_scratch = |what: &str| format!("{what} in {}", scratch.0.display());
    let direct_path = scratch.0.join("direct");
    let buffered_path = scratch.0.join("buffered");
    let direct = write_file(&direct_path, buffer, size, true)
        .with_context(|| in_scratch("direct writes"))?;
    let buffered = write_file(&buffered_path, buffer, size, false)
        .with_context(|| in_scratch("buffered writes"))?
        .context("buffered writes are never refused as direct ones may be")?;
    // Read back whichever file direct writes left out of the page cache; else drop the
    // buffered file's cached pages first.
    let (cold, read_direct) = match direct {
        Some(_) => (&direct_path, true),
        None => {
            drop_cached(&buffered_path)?;
            (&buffered_path, false)
        }
    };
    let read =
        read_file(cold, buffer, size, read_direct).with_context(|| in_scratch("reading back"))?;
    let small = small_file_seconds(&scratch.0, buffer, direct.is_some())
        .with_context(|| in_scratch("small files"))?;
    let direct = direct.map(|s| mib_per_s(size, s));
    let buffered = mib_per_s(size, buffered);
    Ok(DiskResult {
        bytes: size,
        direct_write_mib_per_s: direct,
        buffered_write_mib_per_s: buffered,
        durable_write_mib_per_s: direct.map_or(buffered, |d| d.max(buffered)),
        small_file_ms: small * 1000.0,
        small_file_mib_per_s: mib_per_s(IO_SIZE as u64, small),
        cold_read_mib_per_s: mib_per_s(size, read),
    })
}

/// A scratch directory for a disk measurement, removed with its files however it ends.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(dir: &Path) -> Result<Scratch> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("bench-disk-{}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        let scratch = Scratch(path);
        // Made durable before timing anything: a registry's directories exist already.
        sync_dir(&scratch.0)?;
        sync_dir(dir)?;
        Ok(scratch)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Median seconds to publish a file of `buffer` durably, as a registry publishes a blob:
/// write it under a temporary name (direct when `direct`, which the large writes found the
/// filesystem to allow), `fdatasync`, rename it to its final name and `fsync` the directory.
fn small_file_seconds(dir: &Path, buffer: &[u8], direct: bool) -> Result<f64> {
    let mut times = Vec::with_capacity(SMALL_FILES);
    for n in 0..SMALL_FILES {
        let temporary = dir.join(format!("small-{n}.tmp"));
        let published = dir.join(format!("small-{n}"));
        let start = Instant::now();
        write_file(&temporary, buffer, buffer.len() as u64, direct)?
            .context("direct writes refused after being allowed")?;
        std::fs::rename(&temporary, &published)?;
        sync_dir(dir)?;
        times.push(start.elapsed().as_secs_f64());
    }
    crate::units::median(&times).context("no small files were timed")
}

/// Seconds to write `size` bytes of `buffer` (repeated) into a new file and `fdatasync`
/// it; None when `direct` is asked and the filesystem refuses it.
fn write_file(path: &Path, buffer: &[u8], size: u64, direct: bool) -> io::Result<Option<f64>> {
    let file = match create(path, direct) {
        Ok(file) => file,
        Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
        Err(e) => return Err(e),
    };
    let start = Instant::now();
    let mut at = 0;
    while at < size {
        match file.write_at(buffer, at) {
            Ok(n) => at += n as u64,
            // Accepted at open, refused at the first write: some FUSE and network
            // filesystems.
            Err(e) if direct && at == 0 && e.raw_os_error() == Some(libc::EINVAL) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
    file.sync_data()?;
    Ok(Some(start.elapsed().as_secs_f64()))
}

fn create(path: &Path, direct: bool) -> io::Result<File> {
    open(
        OpenOptions::new().write(true).create_new(true),
        path,
        direct,
    )
}

/// Opens `path` with `options`, adding `O_DIRECT` when `direct`.
fn open(options: &mut OpenOptions, path: &Path, direct: bool) -> io::Result<File> {
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_DIRECT);
    }
    options.open(path)
}

/// Seconds to read `size` bytes of `path` into `buffer`, 1 MiB at a time.
fn read_file(path: &Path, buffer: &mut [u8], size: u64, direct: bool) -> io::Result<f64> {
    let file = open(OpenOptions::new().read(true), path, direct)?;
    let start = Instant::now();
    let mut at = 0;
    while at < size {
        match file.read_at(buffer, at)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => at += n as u64,
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Drops the (synced, so clean) pages of `path` from the page cache.
fn drop_cached(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = File::open(path)?;
    // SAFETY: advice on a descriptor we own, with integer arguments only.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Sends `size` bytes over one TCP connection on 127.0.0.1, from a buffer larger than the
/// CPU caches in 1 MiB writes, to a reader that takes them into one 1 MiB buffer (as the
/// pull client does).
pub fn loopback(size: u64) -> Result<Throughput> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1")?;
    let address = listener.local_addr()?;
    let source = crate::blobs::pattern(SOURCE_SIZE, 11);
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let (mut socket, _) = listener.accept()?;
        let mut left = size;
        let mut at = 0;
        while left > 0 {
            let n = (left as usize).min(IO_SIZE).min(SOURCE_SIZE - at);
            socket.write_all(&source[at..at + n])?;
            left -= n as u64;
            at = (at + n) % SOURCE_SIZE;
        }
        Ok(())
    });
    let mut socket = std::net::TcpStream::connect(address).context("connecting")?;
    let mut buffer = vec![0u8; IO_SIZE];
    let start = Instant::now();
    let mut received = 0u64;
    loop {
        match socket.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("receiving"),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    match sender.join() {
        Ok(sent) => sent.context("sending")?,
        Err(_) => anyhow::bail!("the sending thread panicked"),
    }
    anyhow::ensure!(received == size, "received {received} of {size} bytes");
    Ok(Throughput {
        bytes: size,
        seconds,
        mib_per_s: mib_per_s(size, seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_measures_writes_and_a_cold_read_and_leaves_no_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let result = disk(dir.path(), 3 << 20).expect("measure");
        assert_eq!(result.bytes, 3 << 20);
        assert!(result.buffered_write_mib_per_s > 0.0);
        assert!(result.cold_read_mib_per_s > 0.0);
        let best = result
            .direct_write_mib_per_s
            .unwrap_or(0.0)
            .max(result.buffered_write_mib_per_s);
        assert_eq!(result.durable_write_mib_per_s, best);
        assert!(result.small_file_ms > 0.0);
        let small = 1000.0 / result.small_file_ms;
        assert!((result.small_file_mib_per_s - small).abs() < 1e-6 * small);
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert!(left.is_empty(), "scratch files left: {left:?}");
    }

    #[test]
    fn disk_rounds_sizes_up_to_whole_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(disk(dir.path(), 1).expect("measure").bytes, 1 << 20);
        assert_eq!(
            disk(dir.path(), (1 << 20) + 1).expect("measure").bytes,
            2 << 20
        );
    }

    #[test]
    fn loopback_carries_every_byte_of_an_odd_size() {
        let size = (SOURCE_SIZE as u64) + 12_345;
        let result = loopback(size).expect("measure");
        assert_eq!(result.bytes, size);
        assert!(result.mib_per_s > 0.0);
    }
}
