//! Identifying partitions without blkid or udev: PARTUUID from sysfs `uevent`, labels from
//! the file-system superblock.

/// What sysfs `uevent` says about a block device.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Uevent {
    pub devname: Option<String>,
    pub partuuid: Option<String>,
}

/// Parses `/sys/class/block/<dev>/uevent` (`DEVNAME=vda1`, `PARTUUID=6c2a0f13-01`, ...).
pub fn parse_uevent(text: &str) -> Uevent {
    let mut uevent = Uevent::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("DEVNAME", v)) => uevent.devname = Some(v.to_string()),
            Some(("PARTUUID", v)) => uevent.partuuid = Some(v.to_string()),
            _ => {}
        }
    }
    uevent
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
        let Some(image) = crate::data::probe::tests::mke2fs_image("edge-data") else {
            eprintln!("mke2fs not installed; skipping the real-superblock check");
            return;
        };
        assert_eq!(label(&image[..PROBE_LEN]).as_deref(), Some("edge-data"));
    }

    /// A real ext4 made by e2fsprogs, when it is installed.
    pub(crate) fn mke2fs_image(label: &str) -> Option<Vec<u8>> {
        let dir = std::env::temp_dir().join(format!("edge-init-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join("fs.img");
        let status = std::process::Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-L", label])
            .arg(&path)
            .arg("2M")
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        let image = status
            .success()
            .then(|| std::fs::read(&path).ok())
            .flatten();
        let _ = std::fs::remove_dir_all(&dir);
        image
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
