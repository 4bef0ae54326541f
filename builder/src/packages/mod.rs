//! The packages stage: signed Alpine repositories -> resolved, verified .apk files -> the
//! rootfs tree, plus apk's database so `apk` on the device knows what is installed.
//!
//! One entry point, [`install`]. Every byte from outside is verified before use: the index by
//! its RSA signature against trusted keys, each package by the index's control checksum, its
//! `.PKGINFO` datahash and its own signature. Install scripts are never run (the build never
//! runs target binaries); they are recorded in the db and reported as warnings.

mod apk;
mod busybox;
mod db;
pub mod dependency;
mod download;
mod fetch;
mod gzip;
pub mod index;
mod keys;
mod progress;
mod repository;
pub mod resolve;
pub mod signature;
pub mod source;
mod unpack;
mod unpacked;
pub mod version;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::rootfs::RootfsTree;
pub use apk::{MAX_CONTROL_BYTES, MAX_DATA_BYTES, MAX_SIGNATURE_BYTES};
pub use dependency::Dependency;
pub use index::{ApkIndex, IndexEntry};
pub use progress::Progress;
pub use repository::{store as store_in_cache, RepoSpec, Repository, MAX_INDEX_BYTES};
pub use resolve::{DependenciesLeftOut, LeaveOut};
pub use signature::Keyring;

/// What to install, from the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRequest {
    /// Alpine arch name: `x86_64`, `aarch64`.
    pub arch: String,
    /// Searched in order; on equal versions the earlier repository wins.
    pub repositories: Vec<RepoSpec>,
    /// Public keys to trust besides Alpine's built-in ones (the recipe's `alpine.keys`).
    pub extra_keys: Vec<PathBuf>,
    /// apk world entries: `busybox`, `musl>=1.2`, `so:libz.so.1`, `!foo`.
    pub world: Vec<String>,
    /// Dependencies not followed, per package (all of the kernel's; the skeleton's `/bin/sh`
    /// in an image without a shell).
    pub leave_out: BTreeMap<String, LeaveOut>,
    /// Indexes and packages are cached here (see [`default_cache_dir`]).
    pub cache_dir: PathBuf,
}

/// One installed package, for the image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// SHA-256 of the .apk file.
    pub apk_sha256: String,
    /// The index's `C:` (`Q1` + base64 SHA-1 of the control stream).
    pub checksum: String,
    pub size: u64,
    pub installed_size: u64,
    pub license: String,
    /// The source package (`o:`).
    pub origin: String,
    /// The repository the build read it from.
    pub repository: String,
    /// The repository a device would fetch it from (its `/etc/apk/repositories` line), if any.
    pub device_repository: Option<String>,
}

/// The result of [`install`]: packages in install order (dependencies first) and anything the
/// user should know about (install scripts that were not run, offline fallbacks).
#[derive(Debug, Clone, Default)]
pub struct InstalledSet {
    pub packages: Vec<InstalledPackage>,
    pub warnings: Vec<String>,
    /// How many busybox applet symlinks were created.
    pub busybox_links: usize,
    /// The dependencies `leave_out` kept out of the image.
    pub left_out: Vec<DependenciesLeftOut>,
}

/// The edgeimg cache ([`edge_config::cache_dir`]: `$EDGEIMG_CACHE`, else
/// `$XDG_CACHE_HOME/edgeimg`, else `~/.cache/edgeimg`).
pub fn default_cache_dir() -> Result<PathBuf> {
    edge_config::cache_dir().context("no cache directory for this user (set EDGEIMG_CACHE or HOME)")
}

/// The trusted keys: Alpine's built-in ones plus `extra` (the recipe's `alpine.keys`).
pub fn keyring(extra: &[PathBuf]) -> Result<Keyring> {
    let mut ring = Keyring::builtin();
    for path in extra {
        ring.add_file(path)
            .with_context(|| format!("recipe alpine.keys entry {}", path.display()))?;
    }
    Ok(ring)
}

/// Resolve, fetch, verify and unpack the requested packages into `tree`, then write apk's
/// database and create busybox's applet links.
pub fn install(
    request: &PackageRequest,
    tree: &mut RootfsTree,
    progress: &Progress,
) -> Result<InstalledSet> {
    if request.repositories.is_empty() {
        bail!("no Alpine repositories given; add e.g. alpine.repositories = [\"https://dl-cdn.alpinelinux.org/alpine\"] to the recipe");
    }
    let keyring = keyring(&request.extra_keys)?;
    let mut warnings = Vec::new();
    let repos = request
        .repositories
        .iter()
        .map(|spec| {
            Repository::open(
                spec,
                &request.arch,
                &request.cache_dir,
                &keyring,
                progress,
                &mut warnings,
            )
        })
        .collect::<Result<Vec<_>>>()?;

    let world = request
        .world
        .iter()
        .map(|w| Dependency::parse(w).with_context(|| format!("recipe package {w:?}")))
        .collect::<Result<Vec<_>>>()?;
    let cands: Vec<resolve::Candidate> = repos
        .iter()
        .enumerate()
        .flat_map(|(repo, r)| {
            r.index
                .entries
                .iter()
                .map(move |entry| resolve::Candidate { repo, entry })
        })
        .filter(|c| {
            c.entry.arch == request.arch || c.entry.arch == "noarch" || c.entry.arch.is_empty()
        })
        .collect();
    let resolution = resolve::resolve(&cands, &world, &request.leave_out).with_context(|| {
        let names: Vec<String> = request
            .repositories
            .iter()
            .map(|r| r.source.clone())
            .collect();
        format!(
            "resolving packages for {} from {}",
            request.arch,
            names.join(", ")
        )
    })?;
    let order = resolution.order;

    let steps = progress.steps("fetching packages", order.len() as u64);
    let mut fetched = Vec::with_capacity(order.len());
    for &i in &order {
        let c = cands[i];
        fetched.push(fetch::fetch(
            c.entry,
            &repos[c.repo],
            &request.cache_dir,
            &keyring,
            progress,
        )?);
        steps.inc(1);
    }
    steps.finish_and_clear();

    let mut files = Vec::with_capacity(order.len());
    for (&i, f) in order.iter().zip(&fetched) {
        let name = cands[i].entry.name_version();
        files.push(unpack::unpack(&f.apk, tree, &name)?);
        // Only install scripts matter to a fresh image; upgrade/deinstall ones never run here.
        let skipped: Vec<&str> = f
            .apk
            .scripts
            .iter()
            .map(|s| s.kind.as_str())
            .filter(|k| matches!(*k, "pre-install" | "post-install"))
            // busybox's post-install only makes applet links, which we create below.
            .filter(|k| !(cands[i].entry.name == "busybox" && *k == "post-install"))
            .collect();
        if !skipped.is_empty() {
            warnings.push(format!(
                "{name}: {} script not run (the build never runs target binaries; kept in /lib/apk/db/scripts.tar.gz)",
                skipped.join(" and ")
            ));
        }
    }
    last_owner_wins(&mut files);
    let busybox_links = busybox::create_applet_links(tree)?;

    let db_packages: Vec<db::DbPackage> = order
        .iter()
        .zip(&fetched)
        .zip(&files)
        .map(|((&i, f), files)| db::DbPackage {
            entry: cands[i].entry,
            apk: &f.apk,
            files,
        })
        .collect();
    let used: BTreeSet<&str> = repos
        .iter()
        .map(|r| r.signed_by.as_str())
        .chain(fetched.iter().filter_map(|f| f.apk.signed_by.as_deref()))
        .collect();
    let keys: Vec<&signature::TrustedKey> = used.iter().filter_map(|k| keyring.by_id(k)).collect();
    db::write(
        tree,
        &db::DbInputs {
            packages: &db_packages,
            world: &request.world,
            repositories: &request.repositories,
            keys: &keys,
            arch: &request.arch,
        },
    )?;

    let packages = order
        .iter()
        .zip(&fetched)
        .map(|(&i, f)| {
            let (e, repo) = (cands[i].entry, &repos[cands[i].repo]);
            InstalledPackage {
                name: e.name.clone(),
                version: e.version.clone(),
                arch: e.arch.clone(),
                apk_sha256: f.sha256.clone(),
                checksum: e.checksum.clone(),
                size: e.size,
                installed_size: e.installed_size,
                license: e.license.clone(),
                origin: e.origin.clone(),
                repository: repo.spec.source.clone(),
                device_repository: repo.spec.device_line.clone(),
            }
        })
        .collect();
    Ok(InstalledSet {
        packages,
        warnings,
        busybox_links,
        left_out: resolution.left_out,
    })
}

/// Verify one .apk against its index entry and unpack its files into `tree`: what [`install`]
/// does for each package, without dependencies, scripts or apk's database. Errors name the
/// package and, for a refused archive entry, the entry and why.
pub fn unpack_apk(
    bytes: &[u8],
    entry: &IndexEntry,
    keyring: &Keyring,
    tree: &mut RootfsTree,
) -> Result<()> {
    let name = entry.name_version();
    let apk = apk::open_verified(bytes, entry, keyring, &format!("package {name}"))?;
    unpack::unpack(&apk, tree, &name)?;
    Ok(())
}

/// When a later package overwrote a file of an earlier one, only the later one owns it in the
/// db (as apk records it), so removing either package later does the right thing.
fn last_owner_wins(files: &mut [Vec<unpack::InstalledEntry>]) {
    let mut owner = std::collections::HashMap::new();
    for (pkg, list) in files.iter().enumerate() {
        for f in list.iter().filter(|f| !f.is_dir) {
            owner.insert(f.path.clone(), pkg);
        }
    }
    for (pkg, list) in files.iter_mut().enumerate() {
        list.retain(|f| f.is_dir || owner.get(&f.path) == Some(&pkg));
    }
}
