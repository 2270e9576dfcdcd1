//! Reading blob chunks for download the cheapest way the page cache allows.
//!
//! - A chunk already in the page cache is sent from a read-only mapping of it: the socket
//!   copies straight from the cache, with no copy into a buffer of ours first. In a
//!   standalone loopback test, a cached 1 GiB file went out at 3.5–3.7 GiB/s this way,
//!   against 2.0–2.9 GiB/s read into a buffer first.
//! - A chunk that is not cached (blobs are written with direct I/O, so a fresh blob is
//!   not) is read into a buffer with an ordinary read, whose readahead fills the page cache
//!   for the next download: 2.0 GB/s for a cold 1 GiB blob (with free memory; less when the
//!   cache must first be reclaimed), where faulting the mapping in page by page ran at
//!   0.56 GB/s.
//!
//! Elsewhere than Linux, and where mapping fails, chunks are read with ordinary reads.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use bytes::Bytes;

/// Reads chunks of one blob file.
pub struct ChunkReader {
    file: File,
}

impl ChunkReader {
    pub fn new(file: File) -> ChunkReader {
        ChunkReader { file }
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
        }
        self.read_buffered(range)
    }

    fn read_buffered(&self, range: Range<u64>) -> io::Result<Bytes> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_match_the_file_whether_cached_or_not() {
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
        let reader = ChunkReader::new(File::open(&path).expect("open"));
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
        // Not cached: read, not mapped.
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let file = File::open(&path).expect("open");
            file.sync_all().expect("sync");
            // SAFETY: advice on a descriptor we own; clean pages are simply dropped.
            let rc =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            assert_eq!(rc, 0);
            let reader = ChunkReader::new(file);
            assert!(reader.mapped_if_cached(0..len).expect("map").is_none());
            assert_eq!(&reader.chunk(0..len).expect("read")[..], &data[..]);
        }
    }
}
