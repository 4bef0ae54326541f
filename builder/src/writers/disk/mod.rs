//! Raw disk images: partition images (FAT, squashfs, ext4, raw) placed at 1 MiB-aligned
//! offsets behind an MBR or GPT partition table, written sparse.

mod copy;
mod gpt_table;
mod mbr_table;

pub use copy::copy_sparse;

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::atomic::AtomicFile;
use super::ids::{derived_u32, derived_uuid};

pub const MIB: u64 = 1 << 20;
const SECTOR: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionTable {
    /// What the Raspberry Pi firmware reads; at most 4 partitions.
    Mbr,
    /// UEFI machines.
    Gpt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionType {
    /// EFI system partition (MBR 0xef, GPT C12A7328-...).
    EfiSystem,
    /// A FAT data partition such as the Pi's boot partition (MBR 0x0c, GPT basic data).
    Fat,
    /// Any Linux file system: squashfs root, ext4 data (MBR 0x83, GPT 0FC63DAF-...).
    Linux,
}

#[derive(Debug, Clone)]
pub struct PartitionSpec {
    /// GPT partition name; with MBR only reported back in the layout.
    pub name: String,
    pub kind: PartitionType,
    /// The partition's contents, placed at its start (a file-system image or raw data).
    pub image: PathBuf,
    /// Partition size; `None` means the image size. Rounded up to whole MiB.
    pub size_bytes: Option<u64>,
    /// MBR active flag / GPT legacy-BIOS-bootable attribute.
    pub bootable: bool,
}

#[derive(Debug, Clone)]
pub struct DiskSpec {
    pub table: PartitionTable,
    /// Seeds the disk id and partition UUIDs (e.g. the image name), so rebuilds keep them.
    pub seed: String,
    pub partitions: Vec<PartitionSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskLayout {
    pub table: PartitionTable,
    /// GPT disk GUID, or the MBR disk signature as 8 hex digits.
    pub disk_id: String,
    pub size_bytes: u64,
    pub partitions: Vec<PartitionLayout>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLayout {
    /// 1-based, as in `/dev/sda1`.
    pub number: u32,
    pub name: String,
    pub kind: PartitionType,
    pub offset_bytes: u64,
    pub size_bytes: u64,
    /// What the kernel reports as PARTUUID (`root=PARTUUID=...`): the GPT partition GUID, or
    /// `<disk signature>-<2-digit number>` for MBR.
    pub partuuid: String,
}

/// Assemble `spec` into a raw disk image at `out` and return where everything went.
pub fn write_disk(spec: &DiskSpec, out: &Path) -> Result<DiskLayout> {
    let layout = plan_layout(spec)?;
    let mut file = AtomicFile::create(out)?;
    file.file()
        .set_len(layout.size_bytes)
        .with_context(|| format!("cannot size {}", out.display()))?;
    for (part, p) in spec.partitions.iter().zip(&layout.partitions) {
        let src = File::open(&part.image)
            .with_context(|| format!("cannot open partition image {}", part.image.display()))?;
        copy::copy_sparse(&src, file.file(), p.offset_bytes)
            .with_context(|| format!("cannot copy {} into the disk image", part.image.display()))?;
    }
    match spec.table {
        PartitionTable::Mbr => mbr_table::write(file.file(), spec, &layout)?,
        PartitionTable::Gpt => gpt_table::write(file.file(), spec, &layout)?,
    }
    file.commit()?;
    Ok(layout)
}

/// The PARTUUID that partition `number` (1-based) of a disk seeded with `seed` gets, known
/// before any partition image exists: a boot partition's command line names the root's.
pub fn partuuid(table: PartitionTable, seed: &str, number: u32) -> String {
    match table {
        PartitionTable::Mbr => format!(
            "{:08x}-{number:02x}",
            derived_u32(seed, "mbr-disk-signature")
        ),
        PartitionTable::Gpt => derived_uuid(seed, &format!("gpt-partition-{number}")).to_string(),
    }
}

/// Offsets, sizes and ids, before anything is written.
pub fn plan_layout(spec: &DiskSpec) -> Result<DiskLayout> {
    if spec.partitions.is_empty() {
        bail!("a disk image needs at least one partition");
    }
    if spec.table == PartitionTable::Mbr && spec.partitions.len() > 4 {
        bail!(
            "an MBR disk holds at most 4 primary partitions, {} were asked for; use GPT or fewer partitions",
            spec.partitions.len()
        );
    }
    let disk_sig = derived_u32(&spec.seed, "mbr-disk-signature");
    let disk_id = match spec.table {
        PartitionTable::Mbr => format!("{disk_sig:08x}"),
        PartitionTable::Gpt => derived_uuid(&spec.seed, "gpt-disk").to_string(),
    };
    let mut offset = MIB;
    let mut partitions = Vec::new();
    for (i, part) in spec.partitions.iter().enumerate() {
        let number = i as u32 + 1;
        if spec.table == PartitionTable::Gpt && part.name.encode_utf16().count() > 36 {
            bail!(
                "GPT partition name {:?} is longer than 36 characters; shorten it",
                part.name
            );
        }
        let image_len = std::fs::metadata(&part.image)
            .with_context(|| format!("cannot read partition image {}", part.image.display()))?
            .len();
        let wanted = part.size_bytes.unwrap_or(image_len);
        if wanted < image_len {
            bail!(
                "partition {number} ({}) is {wanted} bytes but its image {} is {image_len} bytes; make the partition larger",
                part.name,
                part.image.display()
            );
        }
        let size = wanted.max(1).div_ceil(MIB) * MIB;
        partitions.push(PartitionLayout {
            number,
            name: part.name.clone(),
            kind: part.kind,
            offset_bytes: offset,
            size_bytes: size,
            partuuid: partuuid(spec.table, &spec.seed, number),
        });
        offset += size;
    }
    // GPT keeps a backup table in the last 33 sectors; a spare MiB keeps the end aligned too.
    let size_bytes = match spec.table {
        PartitionTable::Mbr => offset,
        PartitionTable::Gpt => offset + MIB,
    };
    if spec.table == PartitionTable::Mbr && size_bytes / SECTOR > u64::from(u32::MAX) {
        bail!("an MBR disk cannot address {size_bytes} bytes (2 TiB limit); use GPT");
    }
    Ok(DiskLayout {
        table: spec.table,
        disk_id,
        size_bytes,
        partitions,
    })
}
