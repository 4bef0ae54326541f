//! Which parts of a (sparse) file hold data, so copies and `.bmap` files can skip the holes.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;

/// Byte ranges of `file` that hold data, in order, as the kernel reports them with
/// `SEEK_DATA`/`SEEK_HOLE` (std has no wrapper for these). A file system without hole support
/// reports the whole file as data, which is correct, just not sparse.
pub fn data_extents(file: &File) -> io::Result<Vec<Range<u64>>> {
    let len = file.metadata()?.len();
    let fd = file.as_raw_fd();
    let mut extents = Vec::new();
    let mut pos: u64 = 0;
    while pos < len {
        let start = match seek(fd, pos, libc::SEEK_DATA)? {
            Some(s) => s,
            None => break,
        };
        let end = seek(fd, start, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
        if end > start {
            extents.push(start..end);
        }
        pos = end;
    }
    Ok(extents)
}

/// Feed the whole of `file` to `sink` (a hasher), reading only its data extents: a hole is
/// fed as zeros from memory rather than read, which on a 320 MB disk image that maps 30 MB is
/// most of the cost of hashing it. Returns the file's length.
pub fn copy_sparse_to(file: &File, sink: &mut impl io::Write) -> io::Result<u64> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let len = file.metadata()?.len();
    let mut at = 0;
    let feed_zeros = |sink: &mut dyn io::Write, mut n: u64| -> io::Result<()> {
        while n > 0 {
            let chunk = n.min(ZEROS.len() as u64) as usize;
            sink.write_all(&ZEROS[..chunk])?;
            n -= chunk as u64;
        }
        Ok(())
    };
    let mut reader = file;
    for extent in data_extents(file)? {
        feed_zeros(sink, extent.start - at)?;
        io::Seek::seek(&mut reader, io::SeekFrom::Start(extent.start))?;
        let copied = io::copy(&mut io::Read::take(reader, extent.end - extent.start), sink)?;
        if copied != extent.end - extent.start {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was read",
            ));
        }
        at = extent.end;
    }
    feed_zeros(sink, len - at)?;
    Ok(len)
}

fn seek(fd: i32, offset: u64, whence: i32) -> io::Result<Option<u64>> {
    let off = i64::try_from(offset).map_err(|_| io::Error::other("file offset too large"))?;
    // SAFETY: lseek on a file descriptor we borrow for the duration of the call.
    let r = unsafe { libc::lseek(fd, off, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENXIO) => Ok(None),
        _ => Err(err),
    }
}

/// Extents widened to whole `block`-sized blocks and merged: `(first_block, last_block)`,
/// both inclusive, as a block map lists them.
pub fn block_ranges(extents: &[Range<u64>], block: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for e in extents.iter().filter(|e| e.end > e.start) {
        let first = e.start / block;
        let last = (e.end - 1) / block;
        match out.last_mut() {
            Some(prev) if first <= prev.1 + 1 => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn finds_data_between_holes() {
        let mut f = tempfile::tempfile().unwrap();
        f.set_len(8 << 20).unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(&[7u8; 4096]).unwrap();
        f.seek(SeekFrom::Start(5 << 20)).unwrap();
        f.write_all(&[9u8; 8192]).unwrap();
        let ext = data_extents(&f).unwrap();
        let blocks = block_ranges(&ext, 4096);
        // A file system without hole support reports everything; either way the data is in.
        assert!(
            blocks.iter().any(|&(a, b)| a <= 256 && b >= 256),
            "{blocks:?}"
        );
        assert!(
            blocks.iter().any(|&(a, b)| a <= 1280 && b >= 1281),
            "{blocks:?}"
        );
    }

    #[test]
    fn merges_adjacent_blocks() {
        assert_eq!(
            block_ranges(&[0..10, 4096..4100, 20000..20001], 4096),
            [(0, 1), (4, 4)]
        );
    }
}
