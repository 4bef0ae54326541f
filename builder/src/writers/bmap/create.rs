//! Writing a bmap for an image, byte-for-byte in the layout `bmaptool create` produces.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{sha256_of, Bmap, BmapRange, BLOCK_SIZE};
use crate::writers::atomic::AtomicFile;
use crate::writers::extents::{block_ranges, data_extents};

/// Map the data blocks of `image` (from its holes: sparse writers leave unwritten regions as
/// holes) and write the bmap to `out`.
pub fn write_bmap(image: &Path, out: &Path) -> Result<Bmap> {
    let bmap = Bmap::from_image(image)?;
    let mut file = AtomicFile::create(out)?;
    file.file().write_all(bmap.to_xml().as_bytes())?;
    file.commit()?;
    Ok(bmap)
}

impl Bmap {
    pub fn from_image(image: &Path) -> Result<Bmap> {
        let mut f =
            File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
        let image_size = f.metadata()?.len();
        if image_size == 0 {
            bail!("{} is empty; there is nothing to map", image.display());
        }
        let extents = data_extents(&f)
            .with_context(|| format!("cannot find the data in {}", image.display()))?;
        let mut bmap = Bmap {
            image_size,
            block_size: BLOCK_SIZE,
            ranges: Vec::new(),
        };
        for (first, last) in block_ranges(&extents, BLOCK_SIZE) {
            let mut range = BmapRange {
                first,
                last,
                sha256: None,
            };
            let bytes = bmap.byte_range(&range);
            f.seek(SeekFrom::Start(bytes.start))?;
            range.sha256 = Some(sha256_of(&mut (&mut f).take(bytes.end - bytes.start))?);
            bmap.ranges.push(range);
        }
        Ok(bmap)
    }

    /// The bmap file: bmaptool 3.x's exact text (comments and padding included), with the
    /// BmapFileChecksum computed as bmaptool does, over the file with that field all `0`s.
    pub fn to_xml(&self) -> String {
        let blocks = self.blocks_count();
        let mapped = self.mapped_blocks();
        let image_human = human_size(self.image_size);
        let mut x = format!(
            "<?xml version=\"1.0\" ?>
<!-- This file contains the block map for an image file, which is basically
     a list of useful (mapped) block numbers in the image file. In other words,
     it lists only those blocks which contain data (boot sector, partition
     table, file-system metadata, files, directories, extents, etc). These
     blocks have to be copied to the target device. The other blocks do not
     contain any useful data and do not have to be copied to the target
     device.

     The block map an optimization which allows to copy or flash the image to
     the image quicker than copying of flashing the entire image. This is
     because with bmap less data is copied: <MappedBlocksCount> blocks instead
     of <BlocksCount> blocks.

     Besides the machine-readable data, this file contains useful commentaries
     which contain human-readable information like image size, percentage of
     mapped data, etc.

     The 'version' attribute is the block map file format version in the
     'major.minor' format. The version major number is increased whenever an
     incompatible block map format change is made. The minor number changes
     in case of minor backward-compatible changes. -->

<bmap version=\"2.0\">
    <!-- Image size in bytes: {image_human} -->
    <ImageSize> {} </ImageSize>

    <!-- Size of a block in bytes -->
    <BlockSize> {} </BlockSize>

    <!-- Count of blocks in the image file -->
    <BlocksCount> {blocks} </BlocksCount>

    <!-- Count of mapped blocks: ",
            self.image_size, self.block_size
        )
        .into_bytes();
        // bmaptool writes blanks first and overwrites them at the end; so do we.
        let pos1 = x.len();
        let blanks1 = image_human.len() + " or ".len() + "100.0%".len();
        x.extend(format!("{}   -->\n    <MappedBlocksCount> ", " ".repeat(blanks1)).bytes());
        let pos2 = x.len();
        x.extend(
            format!(
                "{} </MappedBlocksCount>\n\n    <!-- Type of checksum used in this file -->\n    <ChecksumType> sha256 </ChecksumType>\n\n    <!-- The checksum of this bmap file. When it is calculated, the value of\n         the checksum has be zero (all ASCII \"0\" symbols).  -->\n    <BmapFileChecksum> ",
                " ".repeat(blocks.to_string().len())
            )
            .bytes(),
        );
        let pos3 = x.len();
        x.extend(format!(
            "{} </BmapFileChecksum>\n\n    <!-- The block map which consists of elements which may either be a\n         range of blocks or a single block. The 'chksum' attribute\n         (if present) is the checksum of this blocks range. -->\n    <BlockMap>\n",
            "0".repeat(64)
        ).bytes());
        for r in &self.ranges {
            let chksum = r
                .sha256
                .map(|s| format!(" chksum=\"{}\"", hex::encode(s)))
                .unwrap_or_default();
            let blocks = if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            };
            x.extend(format!("        <Range{chksum}> {blocks} </Range>\n").bytes());
        }
        x.extend(b"    </BlockMap>\n</bmap>\n");
        let percent = mapped as f64 * 100.0 / blocks as f64;
        overwrite(
            &mut x,
            pos1,
            &format!("{} or {percent:.1}%", human_size(mapped * self.block_size)),
        );
        overwrite(&mut x, pos2, &mapped.to_string());
        let sum = hex::encode(Sha256::digest(&x));
        overwrite(&mut x, pos3, &sum);
        String::from_utf8(x).expect("the bmap text is ASCII")
    }
}

fn overwrite(buf: &mut Vec<u8>, at: usize, s: &str) {
    let end = at + s.len();
    if end > buf.len() {
        buf.resize(end, b' ');
    }
    buf[at..end].copy_from_slice(s.as_bytes());
}

/// bmaptool's `human_size`.
fn human_size(size: u64) -> String {
    if size == 1 {
        return "1 byte".into();
    }
    if size < 512 {
        return format!("{size} bytes");
    }
    let mut s = size as f64;
    for unit in ["KiB", "MiB", "GiB", "TiB"] {
        s /= 1024.0;
        if s < 1024.0 {
            return format!("{s:.1} {unit}");
        }
    }
    format!("{s:.1} EiB")
}
