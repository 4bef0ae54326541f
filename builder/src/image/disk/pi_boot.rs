//! The Raspberry Pi's FAT boot partition: the GPU firmware from `raspberrypi-bootloader`,
//! `config.txt`, `cmdline.txt`, the unwrapped arm64 kernel, the boot initramfs and the
//! device trees, all in the partition's root where the firmware looks for them.

use anyhow::{bail, Result};

use super::BootFiles;
use crate::rootfs::{Meta, NodeKind, RootPath, RootfsTree};
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
const INITRAMFS: &str = "initramfs.cpio.gz";

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

/// The partition's contents, and the names of what the firmware loads.
pub fn boot_partition(
    image_tree: &RootfsTree,
    kernel: &[u8],
    initramfs: &[u8],
    cmdline: &str,
    t: u64,
) -> Result<(RootfsTree, BootFiles)> {
    let mut boot = RootfsTree::new(t);
    let meta = Meta::root(0o644, t);
    for name in FIRMWARE {
        let from = RootPath::new(&format!("/boot/{name}"))?;
        let Some(data) = image_tree.file_data(&from) else {
            bail!("{from} is missing: the Pi firmware comes from the raspberrypi-bootloader package; is it in the image (board rpi4/rpi3 adds it)?");
        };
        boot.add_file(RootPath::new(name)?, data.clone(), meta.clone())?;
    }
    let mut dtbs = 0;
    for (path, node) in image_tree.iter() {
        let NodeKind::File(data) = &node.kind else {
            continue;
        };
        let in_boot = path.as_str().starts_with("boot/");
        let name = path.file_name();
        if in_boot && name.ends_with(".dtb") {
            boot.add_file(RootPath::new(name)?, data.clone(), meta.clone())?;
            dtbs += 1;
        } else if in_boot && name.ends_with(".dtbo") {
            boot.add_file(
                RootPath::new(&format!("overlays/{name}"))?,
                data.clone(),
                meta.clone(),
            )?;
        }
    }
    if dtbs == 0 {
        bail!("the kernel package put no device trees (*.dtb) under /boot; the Pi firmware needs bcm2711-rpi-4-b.dtb / bcm2837-rpi-3-b.dtb");
    }
    boot.add_file(RootPath::new(KERNEL)?, kernel.to_vec(), meta.clone())?;
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
