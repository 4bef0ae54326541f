//! Unpack an .apk's data stream into the rootfs tree, refusing anything that could reach
//! outside the image or that an unprivileged, cross-arch build must not create.

use std::io::Cursor;

use anyhow::{anyhow, bail, Context, Result};
use sha1::{Digest, Sha1};
use tar::EntryType;

use super::apk::{self, ApkFile};
use crate::rootfs::{Meta, Node, NodeKind, RootPath, RootfsTree};

/// One path a package installed, as the installed db lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledEntry {
    pub path: RootPath,
    pub is_dir: bool,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// SHA-1 of the contents (files) or link target (symlinks), for the db's `Z:` line.
    pub sha1: Option<Vec<u8>>,
}

type DataEntry<'a> = tar::Entry<'a, Cursor<&'a [u8]>>;

/// Add every entry of the package's data tar to `tree`; returns what was installed. A file's
/// contents in the tree are a slice of the data tar, not a copy, and the entries are walked by
/// seeking, so a file nobody reads later (most of a kernel package's modules) is never touched.
pub fn unpack(apk: &ApkFile, tree: &mut RootfsTree, package: &str) -> Result<Vec<InstalledEntry>> {
    let mut archive = tar::Archive::new(Cursor::new(&apk.data_tar[..]));
    let mut installed = Vec::new();
    let entries = archive
        .entries_with_seek()
        .with_context(|| format!("package {package}: data stream is not a tar"))?;
    let mut previous: Option<String> = None;
    for entry in entries {
        let mut entry = entry.with_context(|| {
            let place = match &previous {
                Some(name) => format!("after entry {name:?}"),
                None => "at its start".to_string(),
            };
            format!("package {package}: the data stream is not a valid tar {place}")
        })?;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let fail =
            |e: anyhow::Error| e.context(format!("package {package}: refusing entry {raw_name:?}"));
        if let Some(item) =
            unpack_entry(&mut entry, &raw_name, &apk.data_tar, tree).map_err(fail)?
        {
            installed.push(item);
        }
        previous = Some(raw_name);
    }
    Ok(installed)
}

/// A regular entry's contents as a slice of the data tar, checked as [`apk::read_regular`]
/// checks what it reads.
fn regular_contents(entry: &DataEntry<'_>, data_tar: &bytes::Bytes) -> Result<bytes::Bytes> {
    apk::regular_only(entry.header().entry_type())?;
    let start = entry.raw_file_position();
    let claimed = entry.size();
    apk::archive_holds(claimed, (data_tar.len() as u64).saturating_sub(start))?;
    // Both fit in usize: they are within data_tar.
    Ok(data_tar.slice(start as usize..(start + claimed) as usize))
}

fn owner(name: Option<&str>, numeric: u64) -> Result<u32> {
    // Alpine packages name root by name; anything else keeps its number.
    if name == Some("root") {
        return Ok(0);
    }
    u32::try_from(numeric).map_err(|_| anyhow!("owner id {numeric} does not fit in 32 bits"))
}

fn unpack_entry(
    entry: &mut DataEntry<'_>,
    raw_name: &str,
    data_tar: &bytes::Bytes,
    tree: &mut RootfsTree,
) -> Result<Option<InstalledEntry>> {
    let kind = entry.header().entry_type();
    if kind == EntryType::XGlobalHeader {
        return Ok(None);
    }
    let path = RootPath::from_archive(raw_name)?;
    if path.is_root() {
        return Ok(None);
    }
    let header = entry.header();
    let uid = owner(header.username().ok().flatten(), header.uid()?)?;
    let gid = owner(header.groupname().ok().flatten(), header.gid()?)?;
    let mode = header.mode()? & 0o7777;
    let mtime = header.mtime()?;
    let xattrs = apk::pax_xattrs(entry)?;
    let pax_sha1 = apk::pax_sha1(entry)?;
    let meta = Meta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    };
    let (node, sha1) = match kind {
        EntryType::Directory => (NodeKind::Dir, None),
        EntryType::Regular | EntryType::Continuous => {
            let data = regular_contents(entry, data_tar)?;
            let sha1 = pax_sha1.unwrap_or_else(|| Sha1::digest(&data).to_vec());
            (NodeKind::File(data), Some(sha1))
        }
        EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .context("symlink without a target")?;
            let target =
                String::from_utf8(target.into_owned()).context("symlink target is not UTF-8")?;
            let sha1 = pax_sha1.unwrap_or_else(|| Sha1::digest(target.as_bytes()).to_vec());
            (NodeKind::Symlink(target), Some(sha1))
        }
        EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .context("hardlink without a target")?;
            let target = String::from_utf8_lossy(&target).into_owned();
            let target = RootPath::from_archive(&target)
                .with_context(|| format!("hardlink target {target:?} is outside the image"))?;
            let sha1 =
                pax_sha1.or_else(|| tree.file_data(&target).map(|d| Sha1::digest(d).to_vec()));
            (NodeKind::Hardlink(target), sha1)
        }
        EntryType::Char | EntryType::Block => {
            bail!("device nodes are not allowed in packages (the build never creates devices; the device's devtmpfs provides them)")
        }
        EntryType::Fifo => bail!("FIFOs are not allowed in packages"),
        other => bail!("unsupported tar entry type {other:?}"),
    };
    let is_dir = node == NodeKind::Dir;
    tree.insert(path.clone(), Node { kind: node, meta })?;
    Ok(Some(InstalledEntry {
        path,
        is_dir,
        uid,
        gid,
        mode,
        sha1,
    }))
}
