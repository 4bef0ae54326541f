//! Identifying partitions without blkid or udev: PARTUUID from sysfs `uevent` (or, on kernels
//! before 6.3 that leave it out, from the disk's own MBR/GPT), labels from the file-system
//! superblock.

/// What sysfs `uevent` says about a block device.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Uevent {
    pub devname: Option<String>,
    pub partuuid: Option<String>,
    /// Partition number (`PARTN`), absent for whole disks.
    pub partn: Option<u32>,
}

/// Parses `/sys/class/block/<dev>/uevent` (`DEVNAME=vda1`, `PARTUUID=6c2a0f13-01`, ...).
pub fn parse_uevent(text: &str) -> Uevent {
    let mut uevent = Uevent::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("DEVNAME", v)) => uevent.devname = Some(v.to_string()),
            Some(("PARTUUID", v)) => uevent.partuuid = Some(v.to_string()),
            Some(("PARTN", v)) => uevent.partn = v.parse().ok(),
            _ => {}
        }
    }
    uevent
}

/// Bytes of a disk's start that hold its MBR, GPT header and first 16 GPT entries.
pub const TABLE_PROBE_LEN: usize = 512 * 2 + 128 * 16;

/// The PARTUUID the kernel gives partition `partn` of a disk starting with `start`, as
/// `blkid` writes it: `<MBR signature>-<NN>` or the GPT partition GUID, lower-case. Every
/// number the disk gives (where the entries are, how large, how many) is checked before use:
/// the card is whatever was plugged in.
pub fn table_partuuid(start: &[u8], partn: u32) -> Option<String> {
    let mbr = start.get(..512)?;
    if mbr[510..512] != [0x55, 0xAA] || partn == 0 {
        return None;
    }
    // A protective MBR (type 0xEE) fronts a GPT.
    if mbr[450] != 0xEE {
        let sig = u32::from_le_bytes(mbr[440..444].try_into().ok()?);
        return Some(format!("{sig:08x}-{partn:02x}"));
    }
    let header = start.get(512..1024)?;
    if &header[..8] != b"EFI PART" {
        return None;
    }
    let le32 = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let entries_lba = u64::from_le_bytes(header[72..80].try_into().ok()?);
    let entries = le32(80);
    let entry_size = le32(84);
    // The UEFI spec: entries of 128 x 2^n bytes; partition numbers count from 1.
    if entry_size < 128 || !entry_size.is_power_of_two() || partn > entries {
        return None;
    }
    let at = usize::try_from(entries_lba)
        .ok()?
        .checked_mul(512)?
        .checked_add(
            usize::try_from(partn - 1)
                .ok()?
                .checked_mul(entry_size as usize)?,
        )?;
    let guid = start.get(at.checked_add(16)?..at.checked_add(32)?)?;
    if guid.iter().all(|&b| b == 0) {
        return None;
    }
    Some(format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{}",
        u32::from_le_bytes(guid[0..4].try_into().ok()?),
        u16::from_le_bytes(guid[4..6].try_into().ok()?),
        u16::from_le_bytes(guid[6..8].try_into().ok()?),
        guid[8],
        guid[9],
        guid[10..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// Bytes of a device's start that hold every label this reads.
pub const PROBE_LEN: usize = 4096;

const EXT_SUPERBLOCK: usize = 1024;
const EXT_MAGIC: u16 = 0xEF53;

/// The file-system label in a device's first [`PROBE_LEN`] bytes: ext2/3/4 or FAT.
pub fn label(start: &[u8]) -> Option<String> {
    ext_label(start).or_else(|| fat_label(start))
}

fn ext_label(start: &[u8]) -> Option<String> {
    let sb = start.get(EXT_SUPERBLOCK..EXT_SUPERBLOCK + 136)?;
    if u16::from_le_bytes([sb[56], sb[57]]) != EXT_MAGIC {
        return None;
    }
    let name = &sb[120..136];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    non_empty(String::from_utf8_lossy(&name[..end]).trim_end())
}

fn fat_label(start: &[u8]) -> Option<String> {
    let boot = start.get(..512)?;
    if boot[510..512] != [0x55, 0xAA] {
        return None;
    }
    let sectors_per_fat16 = u16::from_le_bytes([boot[22], boot[23]]);
    let (label, fs_type) = if sectors_per_fat16 == 0 {
        (&boot[71..82], &boot[82..90])
    } else {
        (&boot[43..54], &boot[54..62])
    };
    if !fs_type.starts_with(b"FAT") {
        return None;
    }
    let label = String::from_utf8_lossy(label);
    let label = label.trim_end_matches([' ', '\0']);
    if label == "NO NAME" {
        return None;
    }
    non_empty(label)
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// Whether a device matches the configured label and/or PARTUUID (all that are given).
pub fn matches(
    want_label: Option<&str>,
    want_partuuid: Option<&str>,
    label: Option<&str>,
    partuuid: Option<&str>,
) -> bool {
    let label_ok = want_label.is_none_or(|want| label == Some(want));
    let uuid_ok = want_partuuid
        .is_none_or(|want| partuuid.is_some_and(|have| have.eq_ignore_ascii_case(want)));
    (want_label.is_some() || want_partuuid.is_some()) && label_ok && uuid_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbr_partuuid_is_signature_and_number() {
        let mut disk = vec![0u8; TABLE_PROBE_LEN];
        disk[440..444].copy_from_slice(&0x44d5_b85c_u32.to_le_bytes());
        disk[450] = 0x0c;
        disk[510] = 0x55;
        disk[511] = 0xAA;
        assert_eq!(table_partuuid(&disk, 2).as_deref(), Some("44d5b85c-02"));
        disk[511] = 0;
        assert_eq!(table_partuuid(&disk, 2), None);
    }

    #[test]
    fn gpt_partuuid_is_the_entry_guid() {
        let mut disk = vec![0u8; TABLE_PROBE_LEN];
        disk[450] = 0xEE;
        disk[510] = 0x55;
        disk[511] = 0xAA;
        disk[512..520].copy_from_slice(b"EFI PART");
        disk[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        disk[512 + 80..512 + 84].copy_from_slice(&128u32.to_le_bytes());
        disk[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        let entry = 1024 + 128;
        // 6c2a0f13-1234-5678-9abc-def012345678 in GPT's mixed-endian layout.
        disk[entry + 16..entry + 32].copy_from_slice(&[
            0x13, 0x0f, 0x2a, 0x6c, 0x34, 0x12, 0x78, 0x56, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34,
            0x56, 0x78,
        ]);
        assert_eq!(
            table_partuuid(&disk, 2).as_deref(),
            Some("6c2a0f13-1234-5678-9abc-def012345678")
        );
        assert_eq!(table_partuuid(&disk, 1), None);
        // Numbers off the disk that would overflow or point nowhere are no PARTUUID.
        let mut far = disk.clone();
        far[512 + 72..512 + 80].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(table_partuuid(&far, 2), None);
        let mut odd = disk.clone();
        odd[512 + 84..512 + 88].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(table_partuuid(&odd, 2), None);
        assert_eq!(
            table_partuuid(&disk, 129),
            None,
            "beyond the table's 128 entries"
        );
    }

    #[test]
    fn uevent_gives_devname_and_partuuid() {
        let uevent = parse_uevent(
            "MAJOR=253\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\nPARTN=1\nPARTUUID=6c2a0f13-01\n",
        );
        assert_eq!(uevent.devname.as_deref(), Some("vda1"));
        assert_eq!(uevent.partuuid.as_deref(), Some("6c2a0f13-01"));
        assert_eq!(parse_uevent("MAJOR=253\nDEVNAME=vda\n").partuuid, None);
    }

    fn ext4_with_label(label: &[u8]) -> Vec<u8> {
        let mut start = vec![0u8; PROBE_LEN];
        start[EXT_SUPERBLOCK + 56..EXT_SUPERBLOCK + 58].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        start[EXT_SUPERBLOCK + 120..EXT_SUPERBLOCK + 120 + label.len()].copy_from_slice(label);
        start
    }

    #[test]
    fn reads_ext4_labels() {
        assert_eq!(
            label(&ext4_with_label(b"edge-data")).as_deref(),
            Some("edge-data")
        );
        assert_eq!(label(&ext4_with_label(b"")), None);
        let mut not_ext = ext4_with_label(b"edge-data");
        not_ext[EXT_SUPERBLOCK + 56] = 0;
        assert_eq!(label(&not_ext), None);
    }

    #[test]
    fn reads_a_real_mke2fs_superblock() {
        let image = mke2fs_image("edge-data");
        assert_eq!(label(&image[..PROBE_LEN]).as_deref(), Some("edge-data"));
    }

    /// A real 2 MiB ext4 made by e2fsprogs (missing e2fsprogs fails the test).
    fn mke2fs_image(label: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs.img");
        edgeimg_test_support::ext4::mke2fs(&path, 2048, 0, label);
        std::fs::read(&path).unwrap()
    }

    fn fat_boot_sector(fat32: bool, label: &[u8; 11]) -> Vec<u8> {
        let mut start = vec![0u8; PROBE_LEN];
        start[510] = 0x55;
        start[511] = 0xAA;
        if fat32 {
            start[71..82].copy_from_slice(label);
            start[82..90].copy_from_slice(b"FAT32   ");
        } else {
            start[22] = 8;
            start[43..54].copy_from_slice(label);
            start[54..62].copy_from_slice(b"FAT16   ");
        }
        start
    }

    #[test]
    fn reads_fat_labels() {
        assert_eq!(
            label(&fat_boot_sector(true, b"EDGEDATA   ")).as_deref(),
            Some("EDGEDATA")
        );
        assert_eq!(
            label(&fat_boot_sector(false, b"BOOT       ")).as_deref(),
            Some("BOOT")
        );
        assert_eq!(label(&fat_boot_sector(true, b"NO NAME    ")), None);
    }

    #[test]
    fn matching_requires_every_given_identifier() {
        assert!(matches(Some("edge-data"), None, Some("edge-data"), None));
        assert!(matches(
            None,
            Some("6C2A0F13-01"),
            None,
            Some("6c2a0f13-01")
        ));
        assert!(!matches(
            Some("edge-data"),
            Some("6c2a0f13-02"),
            Some("edge-data"),
            Some("6c2a0f13-01")
        ));
        assert!(matches(
            Some("edge-data"),
            Some("6c2a0f13-01"),
            Some("edge-data"),
            Some("6c2a0f13-01")
        ));
        assert!(!matches(Some("edge-data"), None, None, Some("6c2a0f13-01")));
        assert!(!matches(None, None, Some("edge-data"), None));
    }
}
