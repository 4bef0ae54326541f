//! The GPT partition table (with its protective MBR), with the `gpt` crate.

use std::collections::BTreeMap;
use std::fs::File;

use anyhow::{Context, Result};
use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition::Partition;
use gpt::partition_types;
use uuid::Uuid;

use super::{DiskLayout, DiskSpec, PartitionType, SECTOR};

/// UEFI "legacy BIOS bootable" attribute bit.
const LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;

pub fn write(file: &mut File, spec: &DiskSpec, layout: &DiskLayout) -> Result<()> {
    let sectors = layout.size_bytes / SECTOR;
    ProtectiveMBR::with_lb_size(u32::try_from(sectors - 1).unwrap_or(u32::MAX))
        .overwrite_lba0(file)
        .context("cannot write the protective MBR")?;
    let disk_guid: Uuid = layout.disk_id.parse()?;
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(file, Some(disk_guid))
        .context("cannot set up the GPT")?;
    let mut parts = BTreeMap::new();
    for (part, p) in spec.partitions.iter().zip(&layout.partitions) {
        let first_lba = p.offset_bytes / SECTOR;
        parts.insert(
            p.number,
            Partition {
                part_type_guid: match p.kind {
                    PartitionType::EfiSystem => partition_types::EFI,
                    PartitionType::Fat => partition_types::BASIC,
                    PartitionType::Linux => partition_types::LINUX_FS,
                },
                part_guid: p.partuuid.parse()?,
                first_lba,
                last_lba: first_lba + p.size_bytes / SECTOR - 1,
                flags: if part.bootable {
                    LEGACY_BIOS_BOOTABLE
                } else {
                    0
                },
                name: p.name.clone(),
            },
        );
    }
    disk.update_partitions(parts)
        .context("the partitions do not fit the GPT")?;
    disk.write().context("cannot write the GPT")?;
    Ok(())
}
