//! The partitioned disk a board boots from, written from the finished rootfs tree:
//! a boot partition where the board's firmware needs one (the Pi's FAT), a read-only squashfs
//! root and a writable ext4 data partition, then its `.bmap` and, if asked, a qcow2 copy.
//!
//! The kernel boots a small initramfs ([`boot_initramfs`]) whose init finds the root partition
//! by PARTUUID, so nothing depends on device names (`mmcblk0p2` on a Pi, `vda1` in QEMU).

mod boot_initramfs;
mod pi_boot;

use std::path::Path;

use anyhow::{bail, Context, Result};
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
/// boot command line name them.
#[derive(Debug, Clone)]
pub struct DiskPlan {
    pub table: PartitionTable,
    pub seed: String,
    /// The firmware's FAT partition (number 1) on boards that boot from one.
    pub boot_partition: bool,
    pub root_partuuid: String,
    pub data_partuuid: String,
}

impl DiskPlan {
    /// `None` when the plan asks for no disk image.
    pub fn for_plan(plan: &Plan) -> Option<DiskPlan> {
        if !plan.outputs.contains(&OutputKind::Disk) && !plan.outputs.contains(&OutputKind::Qcow2) {
            return None;
        }
        let boot_partition = plan.board.profile().disk_boot;
        // The Pi firmware reads only MBR; UEFI and QEMU take GPT.
        let table = if boot_partition {
            PartitionTable::Mbr
        } else {
            PartitionTable::Gpt
        };
        let root = if boot_partition { 2 } else { 1 };
        Some(DiskPlan {
            table,
            seed: plan.name.clone(),
            boot_partition,
            root_partuuid: disk::partuuid(table, &plan.name, root),
            data_partuuid: disk::partuuid(table, &plan.name, root + 1),
        })
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

    /// Kernel command-line words that make the boot initramfs switch to the root partition.
    pub fn root_cmdline(&self) -> String {
        format!(
            "root=PARTUUID={} rootfstype=squashfs ro rootwait",
            self.root_partuuid
        )
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
    /// Inside the boot partition: what the firmware loads.
    pub boot_files: Option<BootFiles>,
    /// The boot initramfs in the output folder (boards without a boot partition get the kernel
    /// and it from QEMU's `-kernel`/`-initrd`).
    pub kernel: Option<String>,
    pub initramfs: Option<String>,
    /// The whole kernel command line the image boots with.
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BootFiles {
    pub partition: u32,
    pub kernel: String,
    pub initramfs: String,
    pub cmdline: String,
    pub config: String,
}

/// Write `<name>.img` (+ `.img.bmap`, and `.qcow2` if asked) from `tree` (whose `/boot` is
/// already empty) and the boot files taken out of it.
pub fn write_disk_image(
    plan: &Plan,
    disk: &DiskPlan,
    tree: &RootfsTree,
    boot_dir: &BootDir,
    kernel: &BootKernel,
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
    let cmdline = format!("{} {}", plan.kernel.cmdline, disk.root_cmdline());
    let initramfs_zst = timed("disk: boot initramfs", || -> Result<Vec<u8>> {
        let initramfs = boot_initramfs(tree, kernel, t)?;
        Compression::Zstd.compress_into(Vec::new(), |w| cpio::write_newc(&initramfs, w))
    })?;

    let mut outputs = Vec::new();
    let mut partitions = Vec::new();
    let mut boot_files = None;
    let mut carried = Vec::new();
    let (mut kernel_file, mut initramfs_file) = (None, None);
    if disk.boot_partition {
        let (boot_tree, files, on_partition) = timed("disk: Pi boot files", || {
            pi_boot::boot_partition(boot_dir, &kernel.image, &initramfs_zst, &cmdline, t)
        })?;
        carried = on_partition;
        let path = scratch.path().join("boot.fat");
        timed("disk: FAT", || {
            fat::write_fat(
                &boot_tree,
                &fat::FatOptions {
                    size_bytes: pi_boot::partition_size(&boot_tree),
                    label: "BOOT".into(),
                    volume_id: crate::writers::ids::derived_u32(&disk.seed, "boot-volume-id"),
                },
                &path,
            )
        })?;
        partitions.push(partition("boot", PartitionType::Fat, path, None, true));
        boot_files = Some(files);
    } else {
        kernel_file = Some(write_output(plan, "kernel", &kernel.image)?);
        initramfs_file = Some(write_output(plan, "boot.cpio.zst", &initramfs_zst)?);
        for f in [&kernel_file, &initramfs_file].into_iter().flatten() {
            outputs.push(OutputRecord::of_file("boot", &plan.out_dir.join(f))?);
        }
    }

    let root_path = scratch.path().join("root.squashfs");
    timed("disk: squashfs root", || {
        write_squashfs(tree, &root_path, SquashfsCompression::Zstd)
    })?;
    partitions.push(partition(
        "root",
        PartitionType::Linux,
        root_path,
        None,
        false,
    ));

    let data_path = scratch.path().join("data.ext4");
    let data_size = data_partition_size(plan, &partitions)?;
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
        boot_files,
        kernel: kernel_file,
        initramfs: initramfs_file,
        cmdline,
    };
    Ok(WrittenDisk {
        record,
        outputs,
        carried,
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

/// `data_size` from the recipe, or what is left of `image.size` after the other partitions.
fn data_partition_size(plan: &Plan, before: &[PartitionSpec]) -> Result<u64> {
    let Some(total) = plan.disk_size else {
        return Ok(plan.data_size.div_ceil(MIB) * MIB);
    };
    let mut used = MIB; // the partition table's first MiB
    for p in before {
        let len = std::fs::metadata(&p.image)?.len();
        used += len.div_ceil(MIB) * MIB;
    }
    if plan.board.profile().disk_boot {
        // MBR needs nothing at the end; GPT keeps its backup in the last MiB.
    } else {
        used += MIB;
    }
    let left = (total / MIB * MIB).saturating_sub(used);
    if left < 4 * MIB {
        bail!(
            "image.size {total} bytes leaves {left} bytes for the data partition after the boot and root partitions ({used} bytes); make image.size at least {} bytes",
            used + 4 * MIB
        );
    }
    Ok(left)
}

fn write_output(plan: &Plan, suffix: &str, data: &[u8]) -> Result<String> {
    use std::io::Write;
    let name = format!("{}.{suffix}", plan.name);
    let mut out = crate::writers::atomic::AtomicFile::create(&plan.out_dir.join(&name))?;
    out.file().write_all(data)?;
    out.commit()?;
    Ok(name)
}

/// The file `name` from the boot partition of the disk image at `image`.
pub fn read_boot_file(image: &Path, record: &DiskRecord, name: &str) -> Result<Vec<u8>> {
    let files = record
        .boot_files
        .as_ref()
        .with_context(|| format!("{} has no boot partition", record.image))?;
    let part = record
        .partitions
        .iter()
        .find(|p| p.number == files.partition)
        .with_context(|| format!("{} lists no partition {}", record.image, files.partition))?;
    fat::read_fat_file(image, part.offset, part.size, name)
}
