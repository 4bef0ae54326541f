//! The Raspberry Pi's FAT boot partition: the GPU firmware from `raspberrypi-bootloader`,
//! `config.txt`, `cmdline.txt`, the arm64 kernel (gzip'd), the boot initramfs and the
//! device trees, all in the partition's root where the firmware looks for them.

use anyhow::{bail, Result};

use super::BootFiles;
use crate::image::boot_dir::BootDir;
use crate::rootfs::{Meta, RootPath, RootfsTree};
use crate::writers::compression::Compression;
use crate::writers::disk::MIB;

/// Pi 3 family (bootcode.bin, start.elf, fixup.dat) and Pi 4 (start4.elf, fixup4.dat): one card
/// boots both. The cut-down and debug firmware variants are left out (about 9 MB).
const FIRMWARE: [&str; 5] = [
    "bootcode.bin",
    "start.elf",
    "fixup.dat",
    "start4.elf",
    "fixup4.dat",
];
const KERNEL: &str = "kernel8.img";
const INITRAMFS: &str = "initramfs.cpio.zst";

/// `upstream_kernel=1`: the kernel and device trees are mainline's (Debian's/Alpine's), so the
/// firmware must not apply the Raspberry Pi kernel's device-tree conventions.
fn config_txt() -> String {
    format!(
        "# Written by edgeimg. The Pi firmware reads this; see\n\
         # https://www.raspberrypi.com/documentation/computers/config_txt.html\n\
         arm_64bit=1\n\
         enable_uart=1\n\
         upstream_kernel=1\n\
         disable_splash=1\n\
         kernel={KERNEL}\n\
         initramfs {INITRAMFS} followkernel\n"
    )
}

/// The partition's contents, the names of what the firmware loads, and which of the image's
/// `/boot` files it carries.
pub fn boot_partition(
    boot_dir: &BootDir,
    kernel: &[u8],
    initramfs: &[u8],
    cmdline: &str,
    t: u64,
) -> Result<(RootfsTree, BootFiles, Vec<RootPath>)> {
    let mut boot = RootfsTree::new(t);
    let mut carried = Vec::new();
    let meta = Meta::root(0o644, t);
    for name in FIRMWARE {
        let from = RootPath::new(&format!("/boot/{name}"))?;
        let Some(data) = boot_dir.file(&from) else {
            bail!("{from} is missing: the Pi firmware comes from the raspberrypi-bootloader package; is it in the image (board rpi4/rpi3 adds it)?");
        };
        boot.add_file(RootPath::new(name)?, data.clone(), meta.clone())?;
        carried.push(from);
    }
    let mut dtbs = 0;
    for (path, data) in boot_dir.files() {
        let name = path.file_name();
        if name.ends_with(".dtb") {
            boot.add_file(RootPath::new(name)?, data.clone(), meta.clone())?;
            dtbs += 1;
        } else if name.ends_with(".dtbo") {
            boot.add_file(
                RootPath::new(&format!("overlays/{name}"))?,
                data.clone(),
                meta.clone(),
            )?;
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
    let kernel_gz = Compression::Gzip.compress_into(Vec::new(), |w| Ok(w.write_all(kernel)?))?;
    boot.add_file(RootPath::new(KERNEL)?, kernel_gz, meta.clone())?;
    boot.add_file(RootPath::new(INITRAMFS)?, initramfs.to_vec(), meta.clone())?;
    boot.add_file(
        RootPath::new("config.txt")?,
        config_txt().into_bytes(),
        meta.clone(),
    )?;
    boot.add_file(
        RootPath::new("cmdline.txt")?,
        format!("{cmdline}\n").into_bytes(),
        meta,
    )?;
    Ok((
        boot,
        BootFiles {
            partition: 1,
            kernel: KERNEL.into(),
            initramfs: INITRAMFS.into(),
            cmdline: "cmdline.txt".into(),
            config: "config.txt".into(),
        },
        carried,
    ))
}

/// Contents plus room for a kernel update, at least 64 MiB so it is FAT32 as the Pi expects,
/// in whole MiB.
pub fn partition_size(boot: &RootfsTree) -> u64 {
    let content = boot.file_bytes();
    (content + content / 4 + 8 * MIB)
        .max(64 * MIB)
        .div_ceil(MIB)
        * MIB
}
