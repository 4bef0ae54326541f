//! A small MBR disk with one ext4 partition, made with e2fsprogs, for the data-partition test.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

const SECTOR: u64 = 512;
const FIRST_LBA: u64 = 2048;

/// Writes a `size_mib` disk whose partition 1 is ext4 labelled `label`, with MBR disk
/// signature `signature` (so the kernel reports PARTUUID `<signature:08x>-01`).
pub fn mbr_ext4_disk(path: &Path, size_mib: u64, label: &str, signature: u32) {
    let size = size_mib << 20;
    let file = std::fs::File::create(path).unwrap();
    file.set_len(size).unwrap();
    drop(file);
    let sectors = size / SECTOR - FIRST_LBA;
    let status = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", label])
        .arg("-E")
        .arg(format!("offset={}", FIRST_LBA * SECTOR))
        .arg(path)
        .arg(format!("{}k", sectors * SECTOR / 1024))
        .status()
        .expect("running mke2fs (install e2fsprogs)");
    assert!(status.success(), "mke2fs failed");

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
