//! Repairs for what fatfs 0.3 (the current release) gets wrong, so fsck.fat finds the image
//! clean: it writes a long-name entry before every new directory's `.` and `..` (FAT requires
//! them in the first two slots), points `..` of top-level FAT32 directories at the root
//! cluster (must be 0), and leaves the FAT32 free-cluster count unset.

use anyhow::{bail, Result};

const SLOT: usize = 32;
const DOT: &[u8; 11] = b".          ";
const DOTDOT: &[u8; 11] = b"..         ";

/// Repairs the FAT image `img` in place (the whole partition, in memory).
pub fn fix_dot_entries(img: &mut [u8], free_clusters: u32) -> Result<()> {
    if img.len() < 512 {
        bail!("the FAT image is smaller than its boot sector");
    }
    let bpb: [u8; 64] = img[..64].try_into().expect("64 bytes");
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([bpb[o], bpb[o + 1]]));
    let bytes_per_sector = u16_at(11);
    let cluster = bytes_per_sector * u64::from(bpb[13]);
    let fat_sectors = match u16_at(22) {
        0 => u64::from(u32::from_le_bytes([bpb[36], bpb[37], bpb[38], bpb[39]])),
        n => n,
    };
    let root_sectors = (u16_at(17) * SLOT as u64).div_ceil(bytes_per_sector.max(1));
    let data_start =
        (u16_at(14) + u64::from(bpb[16]) * fat_sectors + root_sectors) * bytes_per_sector;
    if cluster == 0 || data_start == 0 {
        bail!("the FAT boot sector just written is malformed");
    }
    let fat32 = u16_at(22) == 0;
    let root_cluster = u32::from_le_bytes([bpb[44], bpb[45], bpb[46], bpb[47]]);
    if fat32 {
        let fs_info = (u16_at(48) * bytes_per_sector + 488) as usize;
        img[fs_info..fs_info + 4].copy_from_slice(&free_clusters.to_le_bytes());
    }
    let len = img.len() as u64;
    let mut n: u64 = 2;
    while data_start + (n - 2) * cluster + 4 * SLOT as u64 <= len {
        let at = (data_start + (n - 2) * cluster) as usize;
        let slots = &mut img[at..at + 4 * SLOT];
        if is_misplaced_dot_dir(slots, n) {
            let mut fixed = [0u8; 4 * SLOT];
            fixed[..SLOT].copy_from_slice(&slots[SLOT..2 * SLOT]);
            fixed[SLOT..2 * SLOT].copy_from_slice(&slots[3 * SLOT..]);
            let parent = &mut fixed[SLOT..2 * SLOT];
            let parent_cluster = u32::from(u16::from_le_bytes([parent[26], parent[27]]))
                | u32::from(u16::from_le_bytes([parent[20], parent[21]])) << 16;
            if fat32 && parent_cluster == root_cluster {
                parent[20..22].fill(0);
                parent[26..28].fill(0);
            }
            fixed[2 * SLOT] = 0xe5;
            fixed[3 * SLOT] = 0xe5;
            slots.copy_from_slice(&fixed);
        }
        n += 1;
    }
    Ok(())
}

/// Slots: long name, `.` pointing at this very cluster, long name, `..`.
fn is_misplaced_dot_dir(s: &[u8], cluster: u64) -> bool {
    let slot = |i: usize| &s[i * SLOT..(i + 1) * SLOT];
    let is_lfn = |e: &[u8]| e[11] == 0x0f;
    let dot = slot(1);
    let points_here = u64::from(u16::from_le_bytes([dot[26], dot[27]]))
        | u64::from(u16::from_le_bytes([dot[20], dot[21]])) << 16;
    is_lfn(slot(0))
        && &dot[..11] == DOT
        && dot[11] & 0x10 != 0
        && points_here == cluster
        && is_lfn(slot(2))
        && &slot(3)[..11] == DOTDOT
}
