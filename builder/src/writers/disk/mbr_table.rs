//! The MBR partition table, with `mbrman`.

use std::fs::File;
use std::io::{Seek, SeekFrom};

use anyhow::{Context, Result};
use mbrman::{MBRPartitionEntry, CHS, MBR};

use super::{DiskLayout, DiskSpec, PartitionType, SECTOR};

pub fn write(file: &mut File, spec: &DiskSpec, layout: &DiskLayout) -> Result<()> {
    let sig = u32::from_str_radix(&layout.disk_id, 16)?.to_le_bytes();
    file.seek(SeekFrom::Start(0))?;
    let mut mbr = MBR::new_from(file, SECTOR as u32, sig).context("cannot set up the MBR")?;
    for (part, p) in spec.partitions.iter().zip(&layout.partitions) {
        mbr[p.number as usize] = MBRPartitionEntry {
            boot: if part.bootable { 0x80 } else { 0 },
            // LBA addressing only: firmware and Linux ignore CHS on disks this size.
            first_chs: CHS::empty(),
            sys: match p.kind {
                PartitionType::EfiSystem => 0xef,
                PartitionType::Fat => 0x0c,
                PartitionType::Linux => 0x83,
            },
            last_chs: CHS::empty(),
            starting_lba: u32::try_from(p.offset_bytes / SECTOR)?,
            sectors: u32::try_from(p.size_bytes / SECTOR)?,
        };
    }
    file.seek(SeekFrom::Start(0))?;
    mbr.write_into(file).context("cannot write the MBR")?;
    Ok(())
}
