//! The .apk cache: files named by the index checksum (`apk/<sha1-hex>.apk`), written under a
//! temp name and renamed only once verified, so the cache never holds a file that failed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::apk::{self, ApkFile};
use super::index::IndexEntry;
use super::progress::Progress;
use super::repository::{self, Repository};
use super::signature::Keyring;
use super::unpacked;

/// A verified package, ready to unpack.
#[derive(Debug)]
pub struct FetchedApk {
    /// SHA-256 of the whole .apk file, for the manifest.
    pub sha256: String,
    pub apk: ApkFile,
}

/// Cache location of a package, from its index checksum.
pub fn cache_path(cache_dir: &Path, entry: &IndexEntry) -> Result<PathBuf> {
    let sha1 = apk::q1_bytes(&entry.checksum).with_context(|| {
        format!(
            "{} in the index has no valid checksum (C:{:?})",
            entry.name_version(),
            entry.checksum
        )
    })?;
    Ok(cache_dir
        .join("apk")
        .join(format!("{}.apk", hex::encode(sha1))))
}

/// Get one package: unpacked from an earlier build if there, else from the .apk cache, else
/// from its repository, verified and then cached unpacked. A cached .apk that fails
/// verification is removed and reported; running again fetches it afresh.
pub fn fetch(
    entry: &IndexEntry,
    repo: &Repository,
    cache_dir: &Path,
    keyring: &Keyring,
    progress: &Progress,
) -> Result<FetchedApk> {
    if let Some(unpacked) = unpacked::load(cache_dir, entry) {
        return Ok(unpacked);
    }
    let fetched = fetch_verified(entry, repo, cache_dir, keyring, progress)?;
    unpacked::store(cache_dir, entry, &cache_path(cache_dir, entry)?, &fetched)?;
    Ok(fetched)
}

fn fetch_verified(
    entry: &IndexEntry,
    repo: &Repository,
    cache_dir: &Path,
    keyring: &Keyring,
    progress: &Progress,
) -> Result<FetchedApk> {
    let path = cache_path(cache_dir, entry)?;
    let name = entry.name_version();
    if path.exists() {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let what = format!("package {name} (cached file {})", path.display());
        return match apk::open_verified(&bytes, entry, keyring, &what) {
            Ok(apk) => Ok(done(&bytes, apk)),
            Err(e) => {
                let removed = std::fs::remove_file(&path);
                let fate = match removed {
                    Ok(()) => {
                        "the bad file was removed from the cache; run again to fetch it afresh"
                            .to_string()
                    }
                    Err(r) => format!("removing it failed ({r}); delete it by hand and run again"),
                };
                Err(e.context(format!("cached package {name} failed verification; {fate}")))
            }
        };
    }
    let source = repo.location.join(&format!("{name}.apk"));
    // The signed index gives the file's size; without one, no more than a package may unpack to.
    let limit = match entry.size {
        0 => apk::MAX_DATA_BYTES,
        size => size,
    };
    let bytes = source
        .read(&name, progress, limit)
        .with_context(|| format!("package {name}: the index says it is {} bytes", entry.size))?;
    if bytes.len() as u64 != entry.size && entry.size != 0 {
        bail!(
            "package {name} from {source}: {} bytes, but the index says {}",
            bytes.len(),
            entry.size
        );
    }
    let what = format!("package {name} ({source})");
    let apk = apk::open_verified(&bytes, entry, keyring, &what)?;
    repository::store(&path, &bytes)?;
    Ok(done(&bytes, apk))
}

fn done(bytes: &[u8], apk: ApkFile) -> FetchedApk {
    FetchedApk {
        sha256: hex::encode(Sha256::digest(bytes)),
        apk,
    }
}
