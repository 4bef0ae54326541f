//! The read-only root file system as squashfs, built with `backhand`.

use std::io::{BufWriter, Cursor, Write};
use std::path::Path;

use anyhow::{Context, Result};
use backhand::compression::Compressor;
use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};

use super::atomic::AtomicFile;
use crate::rootfs::{Node, NodeKind, RootfsTree};

/// Squashfs compression; each needs the matching `CONFIG_SQUASHFS_*` in the kernel
/// (Alpine's linux-virt and Debian's arm64 kernel have all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquashfsCompression {
    /// Smallest; slowest to build.
    Xz,
    Gzip,
    /// Fast to decompress on small boards.
    Zstd,
}

/// Write `tree` as a squashfs image at `out`.
///
/// Owners, modes and mtimes come from the tree, the superblock time is the tree's default
/// time, entries are sorted, so the same tree gives the same bytes. Hardlinks become separate
/// inodes sharing one copy of the data (backhand deduplicates identical files); extended
/// attributes are not written (backhand cannot write them).
pub fn write_squashfs(
    tree: &RootfsTree,
    out: &Path,
    compression: SquashfsCompression,
) -> Result<()> {
    let mut fs = FilesystemWriter::default();
    fs.set_time(secs32(tree.default_mtime(), "the tree's default time")?);
    fs.set_compressor(
        FilesystemCompressor::new(
            match compression {
                SquashfsCompression::Xz => Compressor::Xz,
                SquashfsCompression::Gzip => Compressor::Gzip,
                SquashfsCompression::Zstd => Compressor::Zstd,
            },
            None,
        )
        .context("backhand refused the compressor settings")?,
    );
    for (path, node) in tree.iter() {
        let header = header_of(node).with_context(|| format!("cannot store {path} in squashfs"))?;
        if path.is_root() {
            fs.set_root_mode(header.permissions);
            fs.set_root_uid(header.uid);
            fs.set_root_gid(header.gid);
            continue;
        }
        let name = path.to_absolute();
        let pushed = match &node.kind {
            NodeKind::Dir => fs.push_dir(&name, header),
            NodeKind::File(data) => fs.push_file(Cursor::new(data.clone()), &name, header),
            NodeKind::Hardlink(_) => {
                let data = tree
                    .file_data(path)
                    .cloned()
                    .unwrap_or_else(|| Vec::new().into());
                fs.push_file(Cursor::new(data), &name, header)
            }
            NodeKind::Symlink(target) => fs.push_symlink(target.as_str(), &name, header),
            NodeKind::CharDevice { major, minor } => {
                fs.push_char_device(encode_dev(*major, *minor), &name, header)
            }
            NodeKind::BlockDevice { major, minor } => {
                fs.push_block_device(encode_dev(*major, *minor), &name, header)
            }
            NodeKind::Fifo => fs.push_fifo(&name, header),
        };
        pushed.with_context(|| format!("backhand refused {path}"))?;
    }

    let mut file = AtomicFile::create(out)?;
    let mut w = BufWriter::new(file.file());
    fs.write(&mut w)
        .with_context(|| format!("cannot write the squashfs image {}", out.display()))?;
    w.flush()?;
    drop(w);
    file.commit()
}

fn header_of(node: &Node) -> Result<NodeHeader> {
    let mode = u16::try_from(node.meta.mode & 0o7777).expect("permission bits fit in u16");
    Ok(NodeHeader::new(
        mode,
        node.meta.uid,
        node.meta.gid,
        secs32(node.meta.mtime, "mtime")?,
    ))
}

fn secs32(t: u64, what: &str) -> Result<u32> {
    u32::try_from(t)
        .with_context(|| format!("{what} {t} is past 2106, which squashfs cannot store"))
}

/// Linux's `new_encode_dev`, the device number layout squashfs stores.
fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}
