//! What the hardware asks for: every device's `modalias` under `/sys/devices`.

use std::collections::BTreeSet;
use std::path::Path;

pub const SYS_DEVICES: &str = "/sys/devices";
/// Deeper than any real device path (USB behind hubs behind PCIe bridges is ~20).
const MAX_DEPTH: usize = 40;

/// The modalias of every device below `root`: its `modalias` file, else the `MODALIAS=` line
/// of its `uevent` (some buses, e.g. MDIO PHYs, only put it there). Symlinks are not followed
/// (sysfs links back up the tree); `virtual` devices (ttys, loopback, ...) have no driver to
/// load and are skipped.
pub fn modaliases(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    walk(root, 0, &mut found);
    found
}

fn walk(dir: &Path, depth: usize, found: &mut BTreeSet<String>) {
    if let Some(alias) = device_modalias(dir) {
        found.insert(alias);
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && !(depth == 0 && entry.file_name() == "virtual") {
            walk(&entry.path(), depth + 1, found);
        }
    }
}

fn device_modalias(dir: &Path) -> Option<String> {
    let alias = match std::fs::read_to_string(dir.join("modalias")) {
        Ok(text) => text.trim().to_string(),
        Err(_) => uevent_modalias(&std::fs::read_to_string(dir.join("uevent")).ok()?)?,
    };
    (!alias.is_empty()).then_some(alias)
}

/// `MODALIAS=...` in a uevent (the sysfs file or a netlink message's fields).
pub fn uevent_modalias(uevent: &str) -> Option<String> {
    uevent
        .split(['\n', '\0'])
        .find_map(|line| line.strip_prefix("MODALIAS="))
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_modalias_files_and_uevent_lines_without_following_links() {
        let tmp = tempfile::tempdir().unwrap();
        let sys = tmp.path().to_path_buf();
        let dev = sys.join("platform/fe340000.mmc");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("modalias"), "of:NmmcT(null)Cbrcm,bcm2711-emmc2\n").unwrap();
        let phy = sys.join("platform/mdio/phy1");
        std::fs::create_dir_all(&phy).unwrap();
        std::fs::write(
            phy.join("uevent"),
            "OF_NAME=ethernet-phy\nMODALIAS=mdio:01100000000000001011100000101010\n",
        )
        .unwrap();
        let virt = sys.join("virtual/tty/tty0");
        std::fs::create_dir_all(&virt).unwrap();
        std::fs::write(virt.join("modalias"), "should-not-count").unwrap();
        // A link back up the tree must not loop.
        std::os::unix::fs::symlink(&sys, dev.join("subsystem")).unwrap();
        let found: Vec<String> = modaliases(&sys).into_iter().collect();
        assert_eq!(
            found,
            [
                "mdio:01100000000000001011100000101010",
                "of:NmmcT(null)Cbrcm,bcm2711-emmc2"
            ]
        );
    }

    #[test]
    fn netlink_fields_carry_the_modalias() {
        let message = "add@/devices/pci0000:00/0000:00:02.0\0ACTION=add\0MODALIAS=pci:v00001AF4d00001000sv*\0";
        assert_eq!(
            uevent_modalias(message).as_deref(),
            Some("pci:v00001AF4d00001000sv*")
        );
        assert_eq!(uevent_modalias("ACTION=add\nDEVTYPE=disk\n"), None);
    }
}
