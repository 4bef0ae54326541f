//! The partitioned disk a board boots from, written from the finished rootfs tree: a FAT boot
//! partition with a folder of boot files per slot, the read-only squashfs roots of slot a and
//! slot b (empty until an update), a writable ext4 data partition; then its `.bmap`, if asked
//! a qcow2 copy, and if the recipe signs system updates the `.update` artifact.
//!
//! The kernel boots a small initramfs ([`boot_initramfs`]) whose init finds the root partition
//! by PARTUUID, so nothing depends on device names (`mmcblk0p2` on a Pi, `vda1` in QEMU).

mod boot_initramfs;
mod boot_partition;
mod pi_boot;
mod update_artifact;

use std::path::Path;

use anyhow::{bail, Context, Result};
use edge_config::system::{SystemConfig, SLOTS};
use edge_config::DataPartition;
use serde::{Deserialize, Serialize};

use crate::image::boot_dir::BootDir;
use crate::image::kernel::BootKernel;
use crate::plan::Plan;
use crate::recipe::OutputKind;
use crate::rootfs::{RootPath, RootfsTree};
use crate::stage::timed;
use crate::writers::compression::Compression;
use crate::writers::disk::{self, DiskSpec, PartitionSpec, PartitionTable, PartitionType, MIB};
use crate::writers::ext4::{write_ext4, Ext4Options};
use crate::writers::record::OutputRecord;
use crate::writers::squashfs::{write_squashfs, SquashfsCompression};
use crate::writers::{bmap, cpio, fat, qcow2};

pub use boot_initramfs::{boot_initramfs, initramfs_skeleton};
pub use boot_partition::{SlotBoot, BOOT_PARTITION_BYTES, BOOT_SLOT_BYTES};

/// Label of the data partition; init mounts it at [`DATA_MOUNTPOINT`].
pub const DATA_LABEL: &str = "edge-data";
pub const DATA_MOUNTPOINT: &str = "/data";

/// The data file system of a kernel + initramfs boot, which has no disk image: an ext4 disk of
/// its own, found by its label.
pub fn data_disk_partition() -> DataPartition {
    DataPartition {
        label: Some(DATA_LABEL.into()),
        partuuid: None,
        fstype: "ext4".into(),
        mountpoint: DATA_MOUNTPOINT.into(),
    }
}

/// Writes that disk: an empty ext4 file system of the recipe's `data_size`, labelled
/// [`DATA_LABEL`].
pub fn write_data_disk(plan: &Plan, out: &Path) -> Result<()> {
    write_ext4(
        &Ext4Options {
            size_bytes: plan.data_size.div_ceil(MIB) * MIB,
            label: DATA_LABEL.into(),
            seed: plan.name.clone(),
            mtime: plan.source_date_epoch,
        },
        out,
    )?;
    Ok(())
}

/// Partition numbers and ids, fixed before anything is written: the device config and the
/// boot command lines name them. Every disk image has the same four partitions: the FAT boot
/// partition (see [`SlotBoot`]), the roots of slot a and b, and the data partition.
#[derive(Debug, Clone)]
pub struct DiskPlan {
    pub table: PartitionTable,
    pub seed: String,
    /// The Pi firmware goes on the boot partition.
    pub pi_firmware: bool,
    pub boot_partuuid: String,
    /// Slot a's root partition, then slot b's.
    pub root_partuuids: [String; 2],
    pub data_partuuid: String,
    /// Each root partition's size, settled once the root's contents are known
    /// ([`DiskPlan::settle_slot_size`]).
    pub slot_bytes: u64,
}

const BOOT_NUMBER: u32 = 1;
const ROOT_NUMBERS: [u32; 2] = [2, 3];
const DATA_NUMBER: u32 = 4;

impl DiskPlan {
    /// `None` when the plan asks for no disk image.
    pub fn for_plan(plan: &Plan) -> Option<DiskPlan> {
        if !plan.outputs.contains(&OutputKind::Disk) && !plan.outputs.contains(&OutputKind::Qcow2) {
            return None;
        }
        let pi_firmware = plan.board.profile().disk_boot;
        // The Pi firmware reads only MBR (four primary partitions: exactly ours); UEFI and
        // QEMU take GPT.
        let table = if pi_firmware {
            PartitionTable::Mbr
        } else {
            PartitionTable::Gpt
        };
        let id = |n| disk::partuuid(table, &plan.name, n);
        Some(DiskPlan {
            table,
            seed: plan.name.clone(),
            pi_firmware,
            boot_partuuid: id(BOOT_NUMBER),
            root_partuuids: ROOT_NUMBERS.map(id),
            data_partuuid: id(DATA_NUMBER),
            slot_bytes: plan.slot_size.unwrap_or(0),
        })
    }

    /// The recipe's `image.slot_size`, or twice the root's bytes (uncompressed, so with room
    /// for growth whatever the compression), at least 64 MiB, in 16 MiB steps.
    pub fn settle_slot_size(&mut self, plan: &Plan, root_bytes: u64) {
        self.slot_bytes = plan
            .slot_size
            .unwrap_or_else(|| (2 * root_bytes).max(64 * MIB).div_ceil(16 * MIB) * 16 * MIB)
            .div_ceil(MIB)
            * MIB;
    }

    /// What init mounts at /data.
    pub fn data_partition(&self) -> DataPartition {
        DataPartition {
            label: Some(DATA_LABEL.into()),
            partuuid: Some(self.data_partuuid.clone()),
            fstype: "ext4".into(),
            mountpoint: DATA_MOUNTPOINT.into(),
        }
    }

    /// Kernel command-line words that make the boot initramfs switch to `slot`'s root
    /// partition, and tell init which slot it runs. `panic=10`: a kernel that panics reboots,
    /// so a trial boot that panics is counted and rolled back.
    pub fn root_cmdline(&self, slot: &str) -> String {
        let index = SLOTS.iter().position(|s| *s == slot).expect("a slot name");
        format!(
            "root=PARTUUID={} rootfstype=squashfs ro rootwait panic=10 edgeimg.slot={slot}",
            self.root_partuuids[index]
        )
    }

    /// The largest artifact a device takes: a root slot, one slot's boot files and each
    /// slot's `cmdline.txt` and `config.txt`, with the tar's headers.
    pub fn max_update_bytes(&self) -> u64 {
        self.slot_bytes + BOOT_SLOT_BYTES + MIB
    }

    /// The data partition's size: the recipe's `data_size`, and with system updates at least
    /// room for an upload (the server stages it there) beside 16 MiB for the rest.
    fn data_bytes(&self, plan: &Plan) -> u64 {
        let asked = plan.data_size.div_ceil(MIB) * MIB;
        match plan.system_updates {
            Some(_) => asked.max(self.max_update_bytes() + 16 * MIB),
            None => asked,
        }
    }

    /// The device config's `[system]`.
    pub fn system_config(&self, plan: &Plan, public_key_file: Option<String>) -> SystemConfig {
        SystemConfig {
            version: plan.version.clone(),
            board: plan.board.name().to_string(),
            arch: plan.arch.to_string(),
            boot_partuuid: self.boot_partuuid.clone(),
            root_partuuids: self.root_partuuids.clone(),
            slot_bytes: self.slot_bytes,
            boot_slot_bytes: BOOT_SLOT_BYTES,
            updates: plan.system_updates.is_some(),
            public_key_file,
            max_update_bytes: self.max_update_bytes(),
            state_dir: edge_config::system::DEFAULT_STATE_DIR.to_string(),
            commit_deadline_secs: plan
                .system_updates
                .as_ref()
                .map_or(edge_config::system::DEFAULT_COMMIT_DEADLINE_SECS, |u| {
                    u.commit_deadline_secs
                }),
            golden_model: None,
            golden: None,
        }
    }
}

/// Where a disk image's parts went, for the manifest and for booting it in QEMU.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiskRecord {
    /// The raw image and its block map, in the output folder.
    pub image: String,
    pub bmap: String,
    pub table: String,
    pub disk_id: String,
    pub size: u64,
    pub mapped_bytes: u64,
    pub partitions: Vec<PartitionRecord>,
    /// Inside the boot partition: what boots.
    pub boot_files: BootFiles,
    /// The whole kernel command line slot a boots with.
    pub cmdline: String,
}

/// What [`write_disk_image`] wrote.
pub struct WrittenDisk {
    pub record: DiskRecord,
    pub outputs: Vec<OutputRecord>,
    /// The image's `/boot` files the boot partition carries.
    pub carried: Vec<RootPath>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionRecord {
    pub number: u32,
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub partuuid: String,
}

/// The boot partition's number, its top-level `config.txt` (which names the slot folder that
/// boots), and the names inside a slot folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BootFiles {
    pub partition: u32,
    pub config: String,
    pub kernel: String,
    pub initramfs: String,
    pub cmdline: String,
}

/// Write `<name>.img` (+ `.img.bmap`, and `.qcow2` if asked) from `tree` (whose `/boot` is
/// already empty) and the boot files taken out of it; and `<name>.update` when the recipe
/// signs system updates.
pub fn write_disk_image(
    plan: &Plan,
    disk: &DiskPlan,
    tree: &RootfsTree,
    boot_dir: &BootDir,
    kernel: &BootKernel,
    cache_dir: &Path,
) -> Result<WrittenDisk> {
    let t = plan.source_date_epoch;
    // Partition images are scratch files beside the outputs, removed when done.
    let scratch = tempfile::Builder::new()
        .prefix(".partitions-")
        .tempdir_in(&plan.out_dir)
        .with_context(|| {
            format!(
                "cannot create a scratch folder in {}",
                plan.out_dir.display()
            )
        })?;
    let initramfs_zst = timed("disk: boot initramfs", || -> Result<Vec<u8>> {
        let initramfs = boot_initramfs(tree, kernel, t)?;
        Compression::Zstd.compress_into(Vec::new(), |w| cpio::write_newc(&initramfs, w))
    })?;
    let slot_boot = timed("disk: boot files", || {
        SlotBoot::new(
            disk.pi_firmware,
            plan.arch,
            boot_dir,
            kernel,
            initramfs_zst.into(),
            cache_dir,
        )
    })?;
    let mut partitions = Vec::new();
    let boot_path = scratch.path().join("boot.fat");
    timed("disk: FAT", || {
        fat::write_fat(
            &slot_boot.partition_tree(disk, &plan.kernel.cmdline, t)?,
            &fat::FatOptions {
                size_bytes: BOOT_PARTITION_BYTES,
                label: "BOOT".into(),
                volume_id: crate::writers::ids::derived_u32(&disk.seed, "boot-volume-id"),
            },
            &boot_path,
        )
    })?;
    partitions.push(partition("boot", PartitionType::Fat, boot_path, None, true));

    let root_path = scratch.path().join("root.squashfs");
    timed("disk: squashfs root", || {
        write_squashfs(tree, &root_path, SquashfsCompression::Zstd)
    })?;
    let root_len = std::fs::metadata(&root_path)?.len();
    if root_len > disk.slot_bytes {
        bail!(
            "the root takes {root_len} bytes, more than a slot's {} bytes; raise image.slot_size",
            disk.slot_bytes
        );
    }
    partitions.push(partition(
        "root-a",
        PartitionType::Linux,
        root_path.clone(),
        Some(disk.slot_bytes),
        false,
    ));
    // Slot b stays unwritten (a hole in the image, nothing on a flashed card) until an update.
    let empty = scratch.path().join("empty");
    std::fs::File::create(&empty)?;
    partitions.push(partition(
        "root-b",
        PartitionType::Linux,
        empty,
        Some(disk.slot_bytes),
        false,
    ));

    let data_path = scratch.path().join("data.ext4");
    let data_size = data_partition_size(plan, disk, &partitions)?;
    write_ext4(
        &Ext4Options {
            size_bytes: data_size,
            label: DATA_LABEL.into(),
            seed: disk.seed.clone(),
            mtime: t,
        },
        &data_path,
    )?;
    partitions.push(partition(
        "data",
        PartitionType::Linux,
        data_path,
        Some(data_size),
        false,
    ));

    let mut outputs = Vec::new();
    let image_name = format!("{}.img", plan.name);
    let image_path = plan.out_dir.join(&image_name);
    let layout = timed("disk: partitions into the image", || {
        disk::write_disk(
            &DiskSpec {
                table: disk.table,
                seed: disk.seed.clone(),
                partitions,
            },
            &image_path,
        )
    })?;
    let bmap_name = format!("{image_name}.bmap");
    let map = timed("disk: bmap", || {
        bmap::write_bmap(&image_path, &plan.out_dir.join(&bmap_name))
    })?;
    outputs.push(OutputRecord::of_file("disk", &image_path)?);
    outputs.push(OutputRecord::of_file(
        "bmap",
        &plan.out_dir.join(&bmap_name),
    )?);
    if plan.outputs.contains(&OutputKind::Qcow2) {
        let qcow = plan.out_dir.join(format!("{}.qcow2", plan.name));
        qcow2::write_qcow2(&image_path, &qcow)?;
        outputs.push(OutputRecord::of_file("qcow2", &qcow)?);
    }
    if let Some((key, public)) = plan
        .system_updates
        .as_ref()
        .and_then(|u| Some((u.signing_key.as_ref()?, &u.public_key)))
    {
        let path = timed("disk: update artifact", || {
            update_artifact::write_update(plan, disk, &slot_boot, &root_path, key, public)
        })?;
        outputs.push(OutputRecord::of_file("update", &path)?);
    }
    let record = DiskRecord {
        image: image_name,
        bmap: bmap_name,
        table: format!("{:?}", layout.table).to_lowercase(),
        disk_id: layout.disk_id.clone(),
        size: layout.size_bytes,
        mapped_bytes: map.mapped_blocks() * map.block_size,
        partitions: layout
            .partitions
            .iter()
            .map(|p| PartitionRecord {
                number: p.number,
                name: p.name.clone(),
                offset: p.offset_bytes,
                size: p.size_bytes,
                partuuid: p.partuuid.clone(),
            })
            .collect(),
        boot_files: BootFiles {
            partition: BOOT_NUMBER,
            config: boot_partition::CONFIG.into(),
            kernel: slot_boot.kernel.into(),
            initramfs: boot_partition::INITRAMFS.into(),
            cmdline: boot_partition::CMDLINE.into(),
        },
        cmdline: format!("{} {}", plan.kernel.cmdline, disk.root_cmdline(SLOTS[0])),
    };
    Ok(WrittenDisk {
        record,
        outputs,
        carried: slot_boot.carried,
    })
}

fn partition(
    name: &str,
    kind: PartitionType,
    image: std::path::PathBuf,
    size_bytes: Option<u64>,
    bootable: bool,
) -> PartitionSpec {
    PartitionSpec {
        name: name.into(),
        kind,
        image,
        size_bytes,
        bootable,
    }
}

/// [`DiskPlan::data_bytes`], or what is left of `image.size` after the other partitions.
fn data_partition_size(plan: &Plan, disk: &DiskPlan, before: &[PartitionSpec]) -> Result<u64> {
    let Some(total) = plan.disk_size else {
        return Ok(disk.data_bytes(plan));
    };
    let mut used = MIB; // the partition table's first MiB
    for p in before {
        // A partition is its image, or larger (the root slots).
        let len = std::fs::metadata(&p.image)?
            .len()
            .max(p.size_bytes.unwrap_or(0));
        used += len.div_ceil(MIB) * MIB;
    }
    if !plan.board.profile().disk_boot {
        // GPT keeps its backup in the last MiB; MBR needs nothing at the end.
        used += MIB;
    }
    let left = (total / MIB * MIB).saturating_sub(used);
    let least = match plan.system_updates {
        Some(_) => disk.max_update_bytes() + 16 * MIB,
        None => 4 * MIB,
    };
    if left < least {
        bail!(
            "image.size {total} bytes leaves {left} bytes for the data partition after the boot and root partitions ({used} bytes), which needs {least} (with system updates: room to stage one); make image.size at least {} bytes",
            used + least
        );
    }
    Ok(left)
}

/// The file `name` (e.g. `a/cmdline.txt`) from the boot partition of the disk image at `image`.
pub fn read_boot_file(image: &Path, record: &DiskRecord, name: &str) -> Result<Vec<u8>> {
    let number = record.boot_files.partition;
    let part = record
        .partitions
        .iter()
        .find(|p| p.number == number)
        .with_context(|| format!("{} lists no partition {number}", record.image))?;
    fat::read_fat_file(image, part.offset, part.size, name)
}

/// The slot folder the image at `image` boots, read from its boot partition's `config.txt`
/// as the Pi firmware reads it: `"a/"`.
pub fn booted_slot_prefix(image: &Path, record: &DiskRecord) -> Result<String> {
    let config = read_boot_file(image, record, &record.boot_files.config)?;
    let text = String::from_utf8_lossy(&config);
    let slot = edge_config::system::booted_slot(&text).with_context(|| {
        format!(
            "{}'s config.txt names no slot (no os_prefix= line)",
            record.image
        )
    })?;
    Ok(format!("{slot}/"))
}
