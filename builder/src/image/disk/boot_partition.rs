//! The boot partition every disk image has: a FAT file system with a folder per slot (`a/`,
//! `b/`) holding what boots that slot, and a top-level `config.txt` naming the slot that boots
//! (`os_prefix=a/`). The Pi firmware reads it so; on the QEMU boards the test harness reads it
//! the same way, in the firmware's place. A fresh image boots slot a; `b/` is empty until an
//! update writes it.

use std::path::Path;

use anyhow::{bail, Result};
use edge_config::system::{slot_config_txt, SLOTS};
use edge_config::Arch;

use super::{pi_boot, DiskPlan};
use crate::image::boot_dir::BootDir;
use crate::image::kernel::BootKernel;
use crate::rootfs::{FileData, Meta, RootPath, RootfsTree};
use crate::writers::disk::MIB;

/// The boot partition's size: FAT32 (the Pi wants it) with room for the firmware and two slots.
/// Only what it holds is mapped: the card's written bytes do not grow with it.
pub const BOOT_PARTITION_BYTES: u64 = 144 * MIB;
/// The most one slot's folder may hold, so that both fit beside the firmware (up to 16 MiB).
/// An arm64 kernel as QEMU takes it is 33 MB.
pub const BOOT_SLOT_BYTES: u64 = 64 * MIB;

pub const INITRAMFS: &str = "initramfs.cpio.zst";
pub const CMDLINE: &str = "cmdline.txt";
pub const CONFIG: &str = "config.txt";
/// The kernel QEMU is given (`-kernel`) on the QEMU boards.
const QEMU_KERNEL: &str = "vmlinuz";

/// What boots one slot, and the firmware both share.
pub struct SlotBoot {
    /// The partition's root (the Pi firmware), the same for both slots.
    pub top: Vec<(String, FileData)>,
    /// A slot folder's files but `cmdline.txt` and `config.txt`, the same in both slots.
    pub shared: Vec<(String, FileData)>,
    /// The kernel's name in the slot folder.
    pub kernel: &'static str,
    /// `config.txt` without its `os_prefix` line.
    config_body: String,
    /// The image's `/boot` files on the partition.
    pub carried: Vec<RootPath>,
}

impl SlotBoot {
    pub fn new(
        pi_firmware: bool,
        arch: Arch,
        boot_dir: &BootDir,
        kernel: &BootKernel,
        initramfs: FileData,
        cache_dir: &Path,
    ) -> Result<SlotBoot> {
        let (top, mut shared, carried, kernel_name, config_body) = if pi_firmware {
            let (top, mut carried) = pi_boot::firmware(boot_dir)?;
            let (shared, slot_carried) = pi_boot::slot_files(boot_dir, kernel, cache_dir)?;
            carried.extend(slot_carried);
            (
                top,
                shared,
                carried,
                pi_boot::KERNEL,
                pi_boot::config_body(INITRAMFS),
            )
        } else {
            let body = format!(
                "# Written by edgeimg. The QEMU harness reads it as the Pi firmware reads its\n\
                 # config.txt: the slot folder named by os_prefix boots.\n\
                 kernel={QEMU_KERNEL}\n\
                 initramfs {INITRAMFS}\n"
            );
            // An arm64 Image is 33 MB raw, 11 MB gzip'd, which QEMU unpacks; x86's bzImage
            // is compressed already.
            let kernel = match arch {
                Arch::Aarch64 => pi_boot::gzip_kernel(kernel, cache_dir)?,
                _ => FileData::from(kernel.image.clone()),
            };
            let shared = vec![(QEMU_KERNEL.to_string(), kernel)];
            (Vec::new(), shared, Vec::new(), QEMU_KERNEL, body)
        };
        shared.push((INITRAMFS.to_string(), initramfs));
        let boot = SlotBoot {
            top,
            shared,
            kernel: kernel_name,
            config_body,
            carried,
        };
        let bytes = boot.slot_bytes();
        if bytes > BOOT_SLOT_BYTES {
            bail!(
                "a slot's boot files take {bytes} bytes, more than the {BOOT_SLOT_BYTES} each slot has on the boot partition; leave kernel device trees or firmware out"
            );
        }
        Ok(boot)
    }

    /// `cmdline.txt` (its root is the slot's partition) and `config.txt` (naming the slot) of
    /// `slot`.
    pub fn own_files(
        &self,
        disk: &DiskPlan,
        cmdline: &str,
        slot: &str,
    ) -> Result<Vec<(String, FileData)>> {
        let Some(config) = slot_config_txt(&self.config_body, slot) else {
            bail!("config.txt is longer than one sector; this is a bug in edgeimg");
        };
        Ok(vec![
            (
                CMDLINE.to_string(),
                format!("{cmdline} {}\n", disk.root_cmdline(slot))
                    .into_bytes()
                    .into(),
            ),
            (CONFIG.to_string(), config.into()),
        ])
    }

    fn slot_bytes(&self) -> u64 {
        // cmdline.txt and config.txt: a sector each, with room.
        self.shared.iter().map(|(_, d)| d.len() as u64).sum::<u64>() + 4096
    }

    /// The partition's files: the firmware, slot a's folder, an empty `b/`, and a top-level
    /// `config.txt` that boots slot a.
    pub fn partition_tree(&self, disk: &DiskPlan, cmdline: &str, t: u64) -> Result<RootfsTree> {
        let meta = Meta::root(0o644, t);
        let mut tree = RootfsTree::new(t);
        for (name, data) in &self.top {
            tree.add_file(RootPath::new(name)?, data.clone(), meta.clone())?;
        }
        let [first, second] = SLOTS;
        let own = self.own_files(disk, cmdline, first)?;
        for (name, data) in self.shared.iter().chain(&own) {
            tree.add_file(
                RootPath::new(&format!("{first}/{name}"))?,
                data.clone(),
                meta.clone(),
            )?;
        }
        let config = own
            .iter()
            .find(|(n, _)| n == CONFIG)
            .expect("own_files gives config.txt");
        tree.add_file(RootPath::new(CONFIG)?, config.1.clone(), meta.clone())?;
        tree.add_dir(RootPath::new(second)?, Meta::root(0o755, t))?;
        Ok(tree)
    }
}
