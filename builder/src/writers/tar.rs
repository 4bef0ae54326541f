//! The rootfs as a tar archive: what `docker import`, `systemd-nspawn` or a CI diff want.
//! Owners, modes, times, xattrs and hardlinks come from the tree, so the archive says
//! root:root even though nobody ran as root to build it.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use tar::{EntryType, Header};

use super::atomic::AtomicFile;
use crate::rootfs::{Node, NodeKind, RootfsTree};

pub fn write_rootfs_tar(tree: &RootfsTree, dest: &Path) -> Result<()> {
    let mut out = AtomicFile::create(dest)?;
    {
        let mut builder = tar::Builder::new(BufWriter::new(out.file()));
        for (path, node) in tree.iter() {
            let name = if path.is_root() {
                "./".to_string()
            } else if node.kind == NodeKind::Dir {
                format!("./{}/", path.as_str())
            } else {
                format!("./{}", path.as_str())
            };
            append(&mut builder, &name, node)
                .with_context(|| format!("cannot add {path} to {}", dest.display()))?;
        }
        let mut buffered = builder.into_inner()?;
        buffered.flush()?;
    }
    out.commit()
}

fn append<W: Write>(builder: &mut tar::Builder<W>, name: &str, node: &Node) -> Result<()> {
    if !node.meta.xattrs.is_empty() {
        let pax: Vec<(String, &[u8])> = node
            .meta
            .xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        builder.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))?;
    }
    let mut header = Header::new_gnu();
    header.set_mode(node.meta.mode);
    header.set_uid(node.meta.uid.into());
    header.set_gid(node.meta.gid.into());
    header.set_mtime(node.meta.mtime);
    if node.meta.uid == 0 {
        header.set_username("root")?;
    }
    if node.meta.gid == 0 {
        header.set_groupname("root")?;
    }
    header.set_size(0);
    match &node.kind {
        NodeKind::Dir => header.set_entry_type(EntryType::Directory),
        NodeKind::File(data) => {
            header.set_entry_type(EntryType::Regular);
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, name, &data[..])?;
            return Ok(());
        }
        NodeKind::Symlink(target) => {
            header.set_entry_type(EntryType::Symlink);
            builder.append_link(&mut header, name, target)?;
            return Ok(());
        }
        NodeKind::Hardlink(target) => {
            header.set_entry_type(EntryType::Link);
            builder.append_link(&mut header, name, format!("./{}", target.as_str()))?;
            return Ok(());
        }
        NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } => {
            header.set_entry_type(if matches!(node.kind, NodeKind::CharDevice { .. }) {
                EntryType::Char
            } else {
                EntryType::Block
            });
            header.set_device_major(*major)?;
            header.set_device_minor(*minor)?;
        }
        NodeKind::Fifo => header.set_entry_type(EntryType::Fifo),
    }
    builder.append_data(&mut header, name, std::io::empty())?;
    Ok(())
}
