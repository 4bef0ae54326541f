//! apk's own database in the image (`/lib/apk/db/installed`, `scripts.tar.gz`, `triggers`,
//! `/etc/apk/*`), written the way Alpine 3.23's apk-tools 3 writes it, so `apk info`,
//! `apk add` and `apk upgrade` on the device know exactly what is installed.

use std::fmt::Write as _;

use anyhow::Result;
use base64::Engine;

use super::apk::{q1, ApkFile};
use super::index::IndexEntry;
use super::repository::RepoSpec;
use super::signature::TrustedKey;
use super::unpack::InstalledEntry;
use crate::rootfs::{Meta, RootPath, RootfsTree};

/// One installed package, as the db needs it.
pub struct DbPackage<'a> {
    pub entry: &'a IndexEntry,
    pub apk: &'a ApkFile,
    pub files: &'a [InstalledEntry],
}

/// Everything apk reads at start-up, besides the packages' own files.
pub struct DbInputs<'a> {
    pub packages: &'a [DbPackage<'a>],
    pub world: &'a [String],
    pub repositories: &'a [RepoSpec],
    pub keys: &'a [&'a TrustedKey],
    pub arch: &'a str,
}

pub fn write(tree: &mut RootfsTree, db: &DbInputs<'_>) -> Result<()> {
    let mtime = tree.default_mtime();
    let mut put = |path: &str, data: Vec<u8>, mode: u32| -> Result<()> {
        tree.add_file(RootPath::new(path)?, data, Meta::root(mode, mtime))?;
        Ok(())
    };
    let installed: String = db.packages.iter().map(installed_entry).collect();
    put("lib/apk/db/installed", installed.into_bytes(), 0o644)?;
    put(
        "lib/apk/db/triggers",
        triggers(db.packages).into_bytes(),
        0o644,
    )?;
    put("lib/apk/db/lock", Vec::new(), 0o600)?;
    if let Some(tar_gz) = scripts_tar_gz(db.packages, mtime)? {
        put("lib/apk/db/scripts.tar.gz", tar_gz, 0o644)?;
    }
    put(
        "etc/apk/world",
        lines(db.world.iter().map(String::as_str)).into_bytes(),
        0o644,
    )?;
    // apk searches the repositories in this order, so it is kept, not sorted.
    let repos: String = db
        .repositories
        .iter()
        .filter_map(|r| r.device_line.as_deref())
        .map(|line| format!("{line}\n"))
        .collect();
    put("etc/apk/repositories", repos.into_bytes(), 0o644)?;
    put("etc/apk/arch", format!("{}\n", db.arch).into_bytes(), 0o644)?;
    for key in db.keys {
        put(
            &format!("etc/apk/keys/{}", key.name),
            key.pem.clone().into_bytes(),
            0o644,
        )?;
    }
    Ok(())
}

/// Sorted, de-duplicated, one per line (apk keeps world sorted).
fn lines<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let set: std::collections::BTreeSet<&str> = items.collect();
    set.into_iter().map(|l| format!("{l}\n")).collect()
}

fn joined(deps: &[super::dependency::Dependency]) -> String {
    deps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One package block, fields in apk-tools 3's order, then its directories and files.
pub fn installed_entry(p: &DbPackage<'_>) -> String {
    let e = p.entry;
    let mut s = String::new();
    let mut field = |k: char, v: &str| {
        if !v.is_empty() {
            let _ = writeln!(s, "{k}:{v}");
        }
    };
    field('C', &e.checksum);
    field('P', &e.name);
    field('V', &e.version);
    field('A', &e.arch);
    field('S', &e.size.to_string());
    field('I', &e.installed_size.to_string());
    field('T', &e.description);
    field('U', &e.url);
    field('L', &e.license);
    field('o', &e.origin);
    field('m', &e.maintainer);
    field(
        't',
        &e.build_time.map(|t| t.to_string()).unwrap_or_default(),
    );
    field('c', &e.commit);
    field(
        'k',
        &e.provider_priority
            .map(|k| k.to_string())
            .unwrap_or_default(),
    );
    field('D', &joined(&e.depends));
    field('p', &joined(&e.provides));
    field('i', &joined(&e.install_if));
    let replaces: Vec<&str> = p.apk.pkginfo_values("replaces").collect();
    field('r', &replaces.join(" "));
    field(
        'q',
        p.apk
            .pkginfo_values("replaces_priority")
            .next()
            .unwrap_or(""),
    );
    s.push_str(&file_lines(p.files));
    s.push('\n');
    s
}

/// `F:` per directory (with `M:` if not root:root 0755), then `R:` per file in it (with `a:`
/// if not root:root 0644, and `Z:` its checksum). Files appear under their parent directory.
fn file_lines(files: &[InstalledEntry]) -> String {
    let mut s = String::new();
    let mut current_dir: Option<RootPath> = None;
    for f in files {
        if f.is_dir {
            let _ = writeln!(s, "F:{}", f.path.as_str());
            if (f.uid, f.gid, f.mode) != (0, 0, 0o755) {
                let _ = writeln!(s, "M:{}:{}:{:o}", f.uid, f.gid, f.mode);
            }
            current_dir = Some(f.path.clone());
            continue;
        }
        let parent = f.path.parent().unwrap_or_else(RootPath::root);
        if current_dir.as_ref() != Some(&parent) {
            let _ = writeln!(s, "F:{}", parent.as_str());
            current_dir = Some(parent);
        }
        let _ = writeln!(s, "R:{}", f.path.file_name());
        if (f.uid, f.gid, f.mode) != (0, 0, 0o644) {
            let _ = writeln!(s, "a:{}:{}:{:o}", f.uid, f.gid, f.mode);
        }
        if let Some(sha1) = &f.sha1 {
            let _ = writeln!(s, "Z:{}", q1(sha1));
        }
    }
    s
}

/// `<control checksum> <path> <path>...` for packages with a `triggers` line.
fn triggers(packages: &[DbPackage<'_>]) -> String {
    let mut s = String::new();
    for p in packages {
        let paths: Vec<&str> = p
            .apk
            .pkginfo_values("triggers")
            .flat_map(str::split_ascii_whitespace)
            .collect();
        if !paths.is_empty() && p.apk.scripts.iter().any(|sc| sc.kind == "trigger") {
            let _ = writeln!(s, "{} {}", p.entry.checksum, paths.join(" "));
        }
    }
    s
}

/// The scripts of every package, named `<name>-<version>.X1<control sha1 hex>.<kind>` as apk
/// 3 names them; None when no package has any.
fn scripts_tar_gz(packages: &[DbPackage<'_>], mtime: u64) -> Result<Option<Vec<u8>>> {
    if packages.iter().all(|p| p.apk.scripts.is_empty()) {
        return Ok(None);
    }
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    for p in packages {
        let hex_id = base64::engine::general_purpose::STANDARD
            .decode(p.entry.checksum.trim_start_matches("Q1"))
            .map(hex::encode)
            .unwrap_or_default();
        for script in &p.apk.scripts {
            let name = format!("{}.X1{hex_id}.{}", p.entry.name_version(), script.kind);
            let mut header = tar::Header::new_gnu();
            header.set_size(script.body.len() as u64);
            header.set_mode(0o755);
            header.set_mtime(if script.mtime == 0 {
                mtime
            } else {
                script.mtime
            });
            header.set_username("root")?;
            header.set_groupname("root")?;
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, script.body.as_slice())?;
        }
    }
    Ok(Some(tar.into_inner()?.finish()?))
}
