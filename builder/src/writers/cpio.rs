//! The cpio "newc" initramfs, written with the `cpio` crate (it does newc headers and padding;
//! inode numbering and hardlink grouping are ours).

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

use super::atomic::AtomicFile;
use super::compression::Compression;
use crate::rootfs::{NodeKind, RootPath, RootfsTree};

/// Write `tree` as a compressed newc archive the kernel unpacks as its initramfs.
///
/// Entries come in tree order (parents first), the root as `.` so its mode applies; inode
/// numbers count up from 1. Hardlinked files share an inode with `nlink` set, and the data
/// goes with the last name (the GNU cpio convention, which the kernel also accepts). Device
/// nodes are stored as they are in the tree; none are added. Extended attributes have no place
/// in newc and are not written.
pub fn write_cpio(tree: &RootfsTree, out: &Path, compression: Compression) -> Result<()> {
    let mut file = AtomicFile::create(out)?;
    let buffered = BufWriter::new(file.file());
    let buffered = compression.compress_into(buffered, |w| write_newc(tree, w))?;
    buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", out.display()))?;
    file.commit()
}

/// The uncompressed newc archive of `tree`.
pub fn write_newc(tree: &RootfsTree, w: &mut dyn Write) -> Result<()> {
    write_newc_of(tree, |_| true, w)
}

/// The newc archive of the entries of `tree` that `keep` selects, in tree order. A hardlink
/// group must be kept whole or not at all: its data goes with the group's last name.
pub(crate) fn write_newc_of(
    tree: &RootfsTree,
    keep: impl Fn(&RootPath) -> bool,
    w: &mut dyn Write,
) -> Result<()> {
    let links = LinkGroups::of(tree);
    let mut next_ino = 1u32;
    let mut ino_of_group: HashMap<&RootPath, u32> = HashMap::new();
    for (path, node) in tree.iter().filter(|(path, _)| keep(path)) {
        let name = if path.is_root() { "." } else { path.as_str() };
        let group = links.group_of(path);
        let ino = match group {
            Some(g) => *ino_of_group.entry(g).or_insert_with(|| take(&mut next_ino)),
            None => take(&mut next_ino),
        };
        let mtime = u32::try_from(node.meta.mtime).with_context(|| {
            format!(
                "{path} has mtime {} which newc cannot store (after 2106)",
                node.meta.mtime
            )
        })?;
        let mut builder = cpio::newc::Builder::new(name)
            .ino(ino)
            .mode(node.st_mode())
            .uid(node.meta.uid)
            .gid(node.meta.gid)
            .mtime(mtime)
            .nlink(match node.kind {
                NodeKind::Dir => 2,
                _ => group.map_or(1, |g| links.count(g)),
            });
        let data: &[u8] = match &node.kind {
            NodeKind::File(_) | NodeKind::Hardlink(_) => {
                if group.is_none() || links.is_last(path) {
                    tree.file_data(path).map(|d| &d[..]).unwrap_or(&[])
                } else {
                    &[]
                }
            }
            NodeKind::Symlink(target) => target.as_bytes(),
            NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } => {
                builder = builder.rdev_major(*major).rdev_minor(*minor);
                &[]
            }
            NodeKind::Dir | NodeKind::Fifo => &[],
        };
        let size = u32::try_from(data.len())
            .with_context(|| format!("{path} is larger than the 4 GiB newc allows"))?;
        let mut entry = builder.write(&mut *w, size);
        entry
            .write_all(data)
            .with_context(|| format!("cannot write {path} to the archive"))?;
        entry.finish()?;
    }
    cpio::newc::trailer(w)?;
    Ok(())
}

fn take(n: &mut u32) -> u32 {
    *n += 1;
    *n - 1
}

/// Which paths are names of the same file: every hardlink and the file it points at.
pub(super) struct LinkGroups<'a> {
    /// path -> the regular file that owns the data
    group: HashMap<&'a RootPath, &'a RootPath>,
    /// owner -> (member count, last member in tree order)
    members: HashMap<&'a RootPath, (u32, &'a RootPath)>,
}

impl<'a> LinkGroups<'a> {
    pub(super) fn of(tree: &'a RootfsTree) -> Self {
        let mut group = HashMap::new();
        for (path, node) in tree.iter() {
            if let NodeKind::Hardlink(target) = &node.kind {
                group.insert(path, target);
            }
        }
        let owners: Vec<&RootPath> = group.values().copied().collect();
        for owner in owners {
            group.insert(owner, owner);
        }
        let mut members: HashMap<&RootPath, (u32, &RootPath)> = HashMap::new();
        for (path, _) in tree.iter() {
            if let Some(owner) = group.get(path) {
                let m = members.entry(owner).or_insert((0, path));
                m.0 += 1;
                m.1 = path;
            }
        }
        LinkGroups { group, members }
    }

    pub(super) fn group_of(&self, path: &RootPath) -> Option<&'a RootPath> {
        self.group.get(path).copied()
    }

    fn count(&self, owner: &RootPath) -> u32 {
        self.members.get(owner).map_or(1, |m| m.0)
    }

    fn is_last(&self, path: &RootPath) -> bool {
        self.group_of(path)
            .and_then(|o| self.members.get(o))
            .is_some_and(|m| m.1 == path)
    }
}
