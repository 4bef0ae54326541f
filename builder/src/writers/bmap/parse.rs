//! Reading bmap files, ours or any `bmaptool create` wrote (format 1.x without checksums,
//! 2.0 / 1.4 with sha256).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{Bmap, BmapRange};

impl Bmap {
    /// Read and parse the bmap file at `path`.
    pub fn read(path: &Path) -> Result<Bmap> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the bmap {}", path.display()))?;
        Bmap::parse(&text).with_context(|| {
            format!(
                "cannot use the bmap {}; recreate it (`edgeimg build` or `bmaptool create`)",
                path.display()
            )
        })
    }

    /// Parse a bmap and check its BmapFileChecksum (when it has one).
    pub fn parse(xml: &str) -> Result<Bmap> {
        let doc = roxmltree::Document::parse(xml).context("the bmap file is not valid XML")?;
        let root = doc.root_element();
        if root.tag_name().name() != "bmap" {
            bail!(
                "not a bmap file: the root element is <{}>",
                root.tag_name().name()
            );
        }
        let version = root
            .attribute("version")
            .ok_or_else(|| anyhow!("the bmap has no version attribute"))?;
        let (major, minor) = version
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .with_context(|| format!("bmap version {version:?} is not major.minor"))?;
        if major > 2 {
            bail!("bmap format {version} is newer than this tool understands (up to 2.x)");
        }
        let field = |name: &str| -> Result<&str> {
            root.children()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .map(str::trim)
                .ok_or_else(|| anyhow!("the bmap has no <{name}>"))
        };
        let number = |name: &str| -> Result<u64> {
            let t = field(name)?;
            t.parse()
                .with_context(|| format!("<{name}> {t:?} is not a number"))
        };
        let image_size = number("ImageSize")?;
        let block_size = number("BlockSize")?;
        let blocks_count = number("BlocksCount")?;
        if block_size == 0 || blocks_count != image_size.div_ceil(block_size) {
            bail!("inconsistent bmap: {image_size} bytes is not {blocks_count} blocks of {block_size} bytes");
        }
        let checksums = major >= 2 || (major == 1 && minor == 4);
        if checksums {
            let kind = field("ChecksumType")?;
            if kind != "sha256" {
                bail!("the bmap uses {kind} checksums; only sha256 is supported: recreate it with `bmaptool create` (which uses sha256)");
            }
            verify_bmap_checksum(xml)?;
        } else if major == 1 && minor == 3 {
            bail!("bmap format 1.3 uses SHA-1 checksums, which are not supported: recreate it with a current `bmaptool create`");
        }

        let map = root
            .children()
            .find(|n| n.has_tag_name("BlockMap"))
            .ok_or_else(|| anyhow!("the bmap has no <BlockMap>"))?;
        let mut ranges = Vec::new();
        for r in map.children().filter(|n| n.has_tag_name("Range")) {
            let text = r.text().unwrap_or("").trim();
            let (first, last) = match text.split_once('-') {
                Some((a, b)) => (a.trim().parse::<u64>(), b.trim().parse::<u64>()),
                None => (text.parse::<u64>(), text.parse::<u64>()),
            };
            let (first, last) = first
                .and_then(|f| last.map(|l| (f, l)))
                .with_context(|| format!("bmap range {text:?} is not `N` or `N-M`"))?;
            if first > last || last >= blocks_count {
                bail!("bmap range {text:?} lies outside the image's {blocks_count} blocks");
            }
            let sha256 = match r.attribute("chksum").filter(|_| checksums) {
                Some(h) => Some(
                    hex::decode(h)
                        .ok()
                        .and_then(|v| <[u8; 32]>::try_from(v).ok())
                        .with_context(|| format!("range {text:?} has a malformed sha256 {h:?}"))?,
                ),
                None => None,
            };
            ranges.push(BmapRange {
                first,
                last,
                sha256,
            });
        }
        let bmap = Bmap {
            image_size,
            block_size,
            ranges,
        };
        let mapped = number("MappedBlocksCount")?;
        if mapped != bmap.mapped_blocks() {
            bail!(
                "inconsistent bmap: MappedBlocksCount is {mapped} but the ranges cover {} blocks",
                bmap.mapped_blocks()
            );
        }
        Ok(bmap)
    }
}

/// Check BmapFileChecksum the way bmaptool does: the sha256 of the file with the first
/// occurrence of the recorded checksum replaced by `0`s.
pub fn verify_bmap_checksum(xml: &str) -> Result<()> {
    let start = xml
        .find("<BmapFileChecksum>")
        .ok_or_else(|| anyhow!("the bmap has no <BmapFileChecksum>"))?;
    let rest = &xml[start + "<BmapFileChecksum>".len()..];
    let recorded = rest[..rest.find('<').unwrap_or(rest.len())].trim();
    if recorded.len() != 64 {
        bail!("the bmap's BmapFileChecksum {recorded:?} is not a sha256");
    }
    let at = xml
        .find(recorded)
        .expect("the checksum occurs where it was found");
    let mut zeroed = xml.as_bytes().to_vec();
    zeroed[at..at + 64].fill(b'0');
    let computed = hex::encode(Sha256::digest(&zeroed));
    if !computed.eq_ignore_ascii_case(recorded) {
        bail!("the bmap file is corrupt: its checksum is {recorded} but its contents hash to {computed}");
    }
    Ok(())
}
