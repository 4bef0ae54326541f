//! One repository (`<base>/<branch>/<name>/<arch>/`): fetch its APKINDEX.tar.gz, verify the
//! signature, parse it. Downloaded indexes are cached so an offline rebuild still works.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::apk;
use super::gzip;
use super::index::ApkIndex;
use super::progress::Progress;
use super::signature::{self, Keyring};
use super::source::Location;

/// A repository as the plan names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    /// Where the build reads it, without the arch: `<mirror>/<branch>/<name>` for Alpine's
    /// branch repositories, or a third-party repository's own url (https, or a folder).
    pub source: String,
    /// Its line in the image's `/etc/apk/repositories`, what a device would use; `None` leaves
    /// it out (a host folder with no public URL must not reach the image).
    pub device_line: Option<String>,
}

impl RepoSpec {
    /// Alpine's `name` repository of `branch`: read from `mirror`, named on the device under
    /// `device_mirror`.
    pub fn branch(mirror: &str, branch: &str, name: &str, device_mirror: &str) -> RepoSpec {
        let line = |base: &str| format!("{}/{branch}/{name}", base.trim_end_matches('/'));
        RepoSpec {
            source: line(mirror),
            device_line: Some(line(device_mirror)),
        }
    }
}

/// A repository whose index has been verified and parsed.
#[derive(Debug, Clone)]
pub struct Repository {
    pub spec: RepoSpec,
    /// `<base>/<branch>/<name>/<arch>`.
    pub location: Location,
    pub index: ApkIndex,
    /// The trusted key that signed the index.
    pub signed_by: String,
}

const INDEX_FILE: &str = "APKINDEX.tar.gz";

/// The most an index may unpack to: Alpine 3.23's largest (community, x86_64) is about 10 MB.
pub const MAX_INDEX_BYTES: u64 = 256 << 20;

impl Repository {
    /// Fetch (or read) and verify the index. A remote index that cannot be downloaded falls
    /// back to the cached copy, which is verified again like a fresh one.
    pub fn open(
        spec: &RepoSpec,
        arch: &str,
        cache_dir: &Path,
        keyring: &Keyring,
        progress: &Progress,
        warnings: &mut Vec<String>,
    ) -> Result<Self> {
        let location = Location::parse(&spec.source)?.join(arch);
        let index_location = location.join(INDEX_FILE);
        let cached = cache_path(cache_dir, &index_location);
        let label = format!("{} index", short_name(&spec.source));
        let (bytes, from_cache) = match index_location.read(&label, progress, MAX_INDEX_BYTES) {
            Ok(bytes) => (bytes, false),
            Err(e) if index_location.is_remote() && cached.exists() => {
                warnings.push(format!(
                    "{index_location}: {e:#}; using the cached index from {}",
                    cached.display()
                ));
                let bytes = std::fs::read(&cached)
                    .with_context(|| format!("cannot read {}", cached.display()))?;
                (bytes, true)
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot get the index of repository {} for {arch}",
                        spec.source
                    )
                })
            }
        };
        let what = format!("index {index_location}");
        let (index, signed_by) = verify_and_parse(&bytes, keyring, &what)?;
        if index_location.is_remote() && !from_cache {
            store(&cached, &bytes)?;
        }
        Ok(Repository {
            spec: spec.clone(),
            location,
            index,
            signed_by,
        })
    }
}

/// The last two path segments (`v3.23/main`), for progress labels.
fn short_name(source: &str) -> String {
    let parts: Vec<&str> = source.trim_end_matches('/').rsplit('/').take(2).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// Check the index's signature over its second gzip stream, then parse the APKINDEX in it.
pub fn verify_and_parse(bytes: &[u8], keyring: &Keyring, what: &str) -> Result<(ApkIndex, String)> {
    let corrupt = || format!("{what} is corrupt");
    let streams = "a signed APKINDEX.tar.gz has 2 gzip streams (signature, index)";
    let mut members = gzip::Members::new(bytes);
    let sig = members
        .next_member(apk::MAX_SIGNATURE_BYTES)
        .with_context(corrupt)?
        .with_context(|| format!("{what} is empty"))?;
    if members.is_done() {
        bail!("{what} has only one gzip stream; {streams}");
    }
    let signatures = signature::read_signatures(&sig.data, what)?;
    let signed_by = keyring.verify(&signatures, &bytes[members.rest()], what)?;
    let content = members
        .next_member(MAX_INDEX_BYTES)
        .with_context(corrupt)?
        .with_context(|| format!("{what} has no index stream"))?;
    if !members.is_done() {
        bail!(
            "{what} has more gzip streams after the index (from byte {}); {streams}",
            members.rest().start
        );
    }
    let mut archive = tar::Archive::new(content.data.as_slice());
    let (mut description, mut text) = (String::new(), None);
    for entry in archive
        .entries()
        .with_context(|| format!("{what}: bad tar"))?
    {
        let mut entry = entry.with_context(|| format!("{what}: bad tar entry"))?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if !matches!(name.as_str(), "APKINDEX" | "DESCRIPTION") {
            continue;
        }
        let body =
            apk::read_regular(&mut entry).with_context(|| format!("{what}: entry {name:?}"))?;
        let body =
            String::from_utf8(body).with_context(|| format!("{what}: {name} is not UTF-8 text"))?;
        if name == "APKINDEX" {
            text = Some(body);
        } else {
            description = body.trim().to_string();
        }
    }
    let text = text.with_context(|| format!("{what} holds no APKINDEX file"))?;
    let mut index = ApkIndex::parse(&text).with_context(|| format!("{what}: APKINDEX"))?;
    index.description = description;
    Ok((index, signed_by))
}

/// Cache file for a remote index: one folder per index URL, named by a hash of it.
fn cache_path(cache_dir: &Path, location: &Location) -> PathBuf {
    let digest = hex::encode(&Sha256::digest(location.to_string().as_bytes())[..12]);
    cache_dir.join("index").join(digest).join(INDEX_FILE)
}

/// Write through a temp file + rename, so the cache never holds a half-written file.
pub fn store(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create cache dir {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write to cache dir {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path)
        .with_context(|| format!("cannot store {}", path.display()))?;
    Ok(())
}
