//! What the Raspberry Pi firmware loads: its own files (`bootcode.bin`, `start*.elf`,
//! `fixup*.dat`) in the boot partition's root, shared by both slots, and in each slot's folder
//! the arm64 kernel (gzip'd), the boot initramfs and the device trees.

use std::path::Path;

use anyhow::{bail, Result};
use sha2::{Digest, Sha256};

use crate::image::boot_dir::BootDir;
use crate::image::kernel::BootKernel;
use crate::rootfs::{FileData, RootPath};
use crate::writers::compression::Compression;

/// Pi 3 family (bootcode.bin, start.elf, fixup.dat) and Pi 4 (start4.elf, fixup4.dat): one card
/// boots both. The cut-down and debug firmware variants are left out (about 9 MB).
const FIRMWARE: [&str; 5] = [
    "bootcode.bin",
    "start.elf",
    "fixup.dat",
    "start4.elf",
    "fixup4.dat",
];
pub const KERNEL: &str = "kernel8.img";

/// Files for the boot partition (name, contents), and which of the image's `/boot` files they
/// are.
pub type Carried = (Vec<(String, FileData)>, Vec<RootPath>);

/// `upstream_kernel=1`: the kernel and device trees are mainline's (Debian's/Alpine's), so the
/// firmware must not apply the Raspberry Pi kernel's device-tree conventions. `os_prefix`
/// (added per slot) makes the firmware read the kernel, initramfs, `cmdline.txt` and device
/// trees from the slot's folder.
pub fn config_body(initramfs: &str) -> String {
    format!(
        "# Written by edgeimg. The Pi firmware reads this; see\n\
         # https://www.raspberrypi.com/documentation/computers/config_txt.html\n\
         arm_64bit=1\n\
         enable_uart=1\n\
         upstream_kernel=1\n\
         disable_splash=1\n\
         kernel={KERNEL}\n\
         initramfs {initramfs} followkernel\n"
    )
}

/// The firmware files for the partition's root, and which of the image's `/boot` files they are.
pub fn firmware(boot_dir: &BootDir) -> Result<Carried> {
    let mut files = Vec::new();
    let mut carried = Vec::new();
    for name in FIRMWARE {
        let from = RootPath::new(&format!("/boot/{name}"))?;
        let Some(data) = boot_dir.file(&from) else {
            bail!("{from} is missing: the Pi firmware comes from the raspberrypi-bootloader package; is it in the image (board rpi4/rpi3 adds it)?");
        };
        files.push((name.to_string(), data.clone()));
        carried.push(from);
    }
    Ok((files, carried))
}

/// A slot's kernel and device trees (overlays under `overlays/`), and which `/boot` files
/// they are.
pub fn slot_files(boot_dir: &BootDir, kernel: &BootKernel, cache_dir: &Path) -> Result<Carried> {
    let mut files = Vec::new();
    let mut carried = Vec::new();
    let mut dtbs = 0;
    for (path, data) in boot_dir.files() {
        let name = path.file_name();
        if name.ends_with(".dtb") {
            files.push((name.to_string(), data.clone()));
            dtbs += 1;
        } else if name.ends_with(".dtbo") {
            files.push((format!("overlays/{name}"), data.clone()));
        } else {
            continue;
        }
        carried.push(path.clone());
    }
    if dtbs == 0 {
        bail!("the kernel package put no device trees (*.dtb) under /boot; the Pi firmware needs bcm2711-rpi-4-b.dtb / bcm2837-rpi-3-b.dtb");
    }
    // The firmware gunzips an arm64 kernel it finds gzip'd (Raspberry Pi firmware since
    // September 2020; the config.txt documentation says so): 33 MB of Debian's arm64 Image
    // is 10 MB on the card.
    files.push((KERNEL.to_string(), gzip_kernel(kernel, cache_dir)?));
    Ok((files, carried))
}

/// An arm64 `Image` gzip'd, as the Pi firmware and QEMU's `-kernel` both unpack it: the
/// package's own gzip stream where it ships one, else the Image compressed here once and
/// kept in `cache_dir` under its SHA-256 (half a second a build for the Pi's 33 MB Image).
pub fn gzip_kernel(kernel: &BootKernel, cache_dir: &Path) -> Result<FileData> {
    if let Some(gzipped) = &kernel.gzipped {
        return Ok(gzipped.clone());
    }
    let cached = cache_dir.join("kernel-gzip").join(format!(
        "{}-{GZIP_FORMAT}.gz",
        hex::encode(Sha256::digest(&kernel.image))
    ));
    if let Ok(bytes) = std::fs::read(&cached) {
        return Ok(bytes.into());
    }
    let gzipped =
        Compression::Gzip.compress_into(Vec::new(), |w| Ok(w.write_all(&kernel.image)?))?;
    crate::packages::store_in_cache(&cached, &gzipped)?;
    Ok(gzipped.into())
}

/// Names the compressor in the cache: a change to it must not reuse another's output.
const GZIP_FORMAT: &str = "gzip6-v1";
