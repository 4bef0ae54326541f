//! Copying a partition image into the disk without filling in its holes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use anyhow::Result;

use crate::writers::extents::data_extents;

/// Copy the data extents of `src` into `dst` at `offset`; holes stay holes. Blocks the image
/// wrote (even zeros) are copied as data, so a block map keeps every block the file system
/// relies on.
pub fn copy_sparse(src: &File, dst: &mut File, offset: u64) -> Result<()> {
    let mut src = src;
    let mut buf = vec![0u8; 1 << 20];
    for extent in data_extents(src)? {
        src.seek(SeekFrom::Start(extent.start))?;
        dst.seek(SeekFrom::Start(offset + extent.start))?;
        let mut left = extent.end - extent.start;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            src.read_exact(&mut buf[..n])?;
            dst.write_all(&buf[..n])?;
            left -= n as u64;
        }
    }
    Ok(())
}
