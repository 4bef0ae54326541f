//! Block maps (`.bmap`, format 2.0 as Debian's bmap-tools writes and reads it): which 4 KiB
//! blocks of a sparse disk image hold data, with a sha256 per range, so flashing copies only
//! those and can verify them.

mod create;
mod parse;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

pub use create::write_bmap;
pub use parse::verify_bmap_checksum;

pub const BLOCK_SIZE: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    pub image_size: u64,
    pub block_size: u64,
    pub ranges: Vec<BmapRange>,
}

/// Blocks `first..=last` (inclusive, as in the file) hold data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmapRange {
    pub first: u64,
    pub last: u64,
    /// sha256 of the range's bytes (cut at the image end); absent in pre-1.3 bmaps.
    pub sha256: Option<[u8; 32]>,
}

impl Bmap {
    pub fn blocks_count(&self) -> u64 {
        self.image_size.div_ceil(self.block_size)
    }

    pub fn mapped_blocks(&self) -> u64 {
        self.ranges.iter().map(|r| r.last - r.first + 1).sum()
    }

    /// Byte range of `range` in the image.
    pub fn byte_range(&self, range: &BmapRange) -> std::ops::Range<u64> {
        let start = range.first * self.block_size;
        let end = ((range.last + 1) * self.block_size).min(self.image_size);
        start..end
    }

    /// Check every range's sha256 against the image at `image`; a range without a checksum
    /// is skipped.
    pub fn verify_image(&self, image: &Path) -> Result<()> {
        let mut f =
            File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
        let len = f.metadata()?.len();
        if len < self.image_size {
            bail!(
                "{} is {len} bytes but the bmap describes {} bytes; it is not the image this bmap was made for",
                image.display(),
                self.image_size
            );
        }
        for range in &self.ranges {
            let Some(want) = range.sha256 else { continue };
            let bytes = self.byte_range(range);
            f.seek(SeekFrom::Start(bytes.start))?;
            let got = sha256_of(&mut (&mut f).take(bytes.end - bytes.start))?;
            if got != want {
                bail!(
                    "blocks {}-{} of {} do not match the bmap's sha256: the image is corrupt or not the one the bmap was made for",
                    range.first,
                    range.last,
                    image.display()
                );
            }
        }
        Ok(())
    }
}

impl BmapRange {
    /// Does `data` (this range's bytes) match the recorded checksum? `true` if none recorded.
    pub fn matches(&self, data: &[u8]) -> bool {
        self.sha256
            .is_none_or(|want| <[u8; 32]>::from(Sha256::digest(data)) == want)
    }
}

fn sha256_of(r: &mut impl Read) -> Result<[u8; 32]> {
    let mut h = Sha256::new();
    std::io::copy(r, &mut h)?;
    Ok(h.finalize().into())
}
