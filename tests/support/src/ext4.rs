//! Real ext4 file systems made by e2fsprogs' `mke2fs`, for tests that read what Linux reads.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use crate::tool;

const SECTOR: u64 = 512;
const FIRST_LBA: u64 = 2048;

/// `mke2fs -t ext4 -L label` into `image` (created or resized to `size_kib`), the file system
/// starting `offset` bytes in. Fails when e2fsprogs is missing.
pub fn mke2fs(image: &Path, size_kib: u64, offset: u64, label: &str) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(image)
        .unwrap_or_else(|e| panic!("creating {}: {e}", image.display()));
    file.set_len(offset + size_kib * 1024).unwrap();
    drop(file);
    tool(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-L", label])
            .arg("-E")
            .arg(format!("offset={offset}"))
            .arg(image)
            .arg(format!("{size_kib}k")),
    );
}

/// A `size_mib` disk whose MBR partition 1 is an ext4 labelled `label`, with disk signature
/// `signature` (so the kernel reports PARTUUID `<signature:08x>-01`).
pub fn mbr_ext4_disk(path: &Path, size_mib: u64, label: &str, signature: u32) {
    let size = size_mib << 20;
    let sectors = size / SECTOR - FIRST_LBA;
    mke2fs(path, sectors * SECTOR / 1024, FIRST_LBA * SECTOR, label);
    let mut mbr = [0u8; 72];
    mbr[0..4].copy_from_slice(&signature.to_le_bytes());
    let entry = &mut mbr[6..22];
    entry[4] = 0x83; // Linux
    entry[8..12].copy_from_slice(&(FIRST_LBA as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    mbr[70] = 0x55;
    mbr[71] = 0xAA;
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(440)).unwrap();
    file.write_all(&mbr).unwrap();
}
