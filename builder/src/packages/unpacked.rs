//! The unpacked-package cache: a package's data stream, decompressed, beside what the build
//! reads from its control stream, so a rebuild neither re-reads, re-hashes nor re-inflates
//! the .apk (linux-rpi: 100 MB of gzip, 333 MB of files, most of them modules no image
//! carries).
//!
//! An entry is written only from a package that passed every check in [`super::apk`], under a
//! temp name then renamed, the data tar before the record that vouches for it; so an entry
//! either is whole and was verified, or is not there. Files are named by the index's control
//! checksum, as the .apk cache is: a different package is a different name. An entry is used
//! only while the cached .apk it came from is unchanged since it was verified, judged by its
//! size, modification time and inode as git judges its index: a cached .apk that was changed
//! or removed is verified again from scratch (and refused if bad), as before this cache.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::apk::{self, ApkFile, Script};
use super::fetch::{self, FetchedApk};
use super::index::IndexEntry;
use super::repository;

/// Bumped whenever what an entry holds, or how it is read, changes.
const FORMAT: u32 = 1;

/// Everything of a verified package but its files, which are in the data tar beside it.
#[derive(Serialize, Deserialize)]
struct Record {
    format: u32,
    apk_sha256: String,
    pkginfo: Vec<(String, String)>,
    scripts: Vec<Script>,
    signed_by: Option<String>,
    data_tar_bytes: u64,
    apk_stat: ApkStat,
}

/// The cached .apk as it was when verified.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct ApkStat {
    bytes: u64,
    mtime_ns: i128,
    inode: u64,
    device: u64,
}

impl ApkStat {
    fn of(meta: &Metadata) -> ApkStat {
        ApkStat {
            bytes: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }
}

fn paths(cache_dir: &Path, entry: &IndexEntry) -> Option<(PathBuf, PathBuf)> {
    let sha1 = hex::encode(apk::q1_bytes(&entry.checksum)?);
    let dir = cache_dir.join("apk-unpacked");
    Some((
        dir.join(format!("{sha1}.tar")),
        dir.join(format!("{sha1}.json")),
    ))
}

/// The cached package, if a whole entry of this format is there; anything else is a miss.
pub fn load(cache_dir: &Path, entry: &IndexEntry) -> Option<FetchedApk> {
    let (tar_path, record_path) = paths(cache_dir, entry)?;
    let record: Record = serde_json::from_slice(&std::fs::read(record_path).ok()?).ok()?;
    let apk_now = ApkStat::of(&std::fs::metadata(fetch::cache_path(cache_dir, entry).ok()?).ok()?);
    let file = File::open(tar_path).ok()?;
    if record.format != FORMAT
        || record.apk_stat != apk_now
        || file.metadata().ok()?.len() != record.data_tar_bytes
    {
        return None;
    }
    // SAFETY: entries are only ever created by rename and never written in place, so the
    // mapped file does not change under the map (a user truncating it by hand is not guarded).
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    Some(FetchedApk {
        sha256: record.apk_sha256,
        apk: ApkFile {
            pkginfo: record.pkginfo,
            scripts: record.scripts,
            data_tar: bytes::Bytes::from_owner(map),
            signed_by: record.signed_by,
        },
    })
}

/// Cache a package that was just verified from the cached .apk `apk_path`.
pub fn store(
    cache_dir: &Path,
    entry: &IndexEntry,
    apk_path: &Path,
    fetched: &FetchedApk,
) -> Result<()> {
    let Some((tar_path, record_path)) = paths(cache_dir, entry) else {
        return Ok(());
    };
    let apk_stat = ApkStat::of(
        &std::fs::metadata(apk_path)
            .with_context(|| format!("cannot read {}", apk_path.display()))?,
    );
    let apk = &fetched.apk;
    let record = Record {
        format: FORMAT,
        apk_sha256: fetched.sha256.clone(),
        pkginfo: apk.pkginfo.clone(),
        scripts: apk.scripts.clone(),
        signed_by: apk.signed_by.clone(),
        data_tar_bytes: apk.data_tar.len() as u64,
        apk_stat,
    };
    let what = || format!("caching the unpacked {}", entry.name_version());
    repository::store(&tar_path, &apk.data_tar).with_context(what)?;
    repository::store(&record_path, &serde_json::to_vec(&record)?).with_context(what)
}
