//! What the hardware asks for: the `modalias` of every device the kernel has registered.

use std::path::{Path, PathBuf};

/// Where sysfs is mounted.
pub const SYS: &str = "/sys";

/// Every device `sys` lists under `bus/*/devices/` and `class/*/`, each a link to the device's
/// directory. A modalias comes from a device's bus or class, so these indexes name every device
/// that has one; walking all of `devices/` instead took 98 ms per look under QEMU TCG (aarch64
/// virt), most of it directories no driver is named by. Listing them is cheap; reading each
/// device's modalias is what costs, so callers read only the devices they have not seen.
pub fn device_links(sys: &Path) -> Vec<PathBuf> {
    let mut links = Vec::new();
    for (index, members) in [("bus", Some("devices")), ("class", None)] {
        let Ok(groups) = std::fs::read_dir(sys.join(index)) else {
            continue;
        };
        for group in groups.flatten() {
            let dir = match members {
                Some(sub) => group.path().join(sub),
                None => group.path(),
            };
            if let Ok(devices) = std::fs::read_dir(dir) {
                links.extend(devices.flatten().map(|d| d.path()));
            }
        }
    }
    links
}

/// The modalias of the device `link` points to: its `modalias` file, else the `MODALIAS=` line
/// of its `uevent` (some buses, e.g. MDIO PHYs, only put it there). Devices under
/// `devices/virtual` (ttys, loopback, ...) have no driver to load and give none.
pub fn device_modalias(link: &Path) -> Option<String> {
    if is_virtual(link) {
        return None;
    }
    let alias = match std::fs::read_to_string(link.join("modalias")) {
        Ok(text) => text.trim().to_string(),
        Err(_) => uevent_modalias(&std::fs::read_to_string(link.join("uevent")).ok()?)?,
    };
    (!alias.is_empty()).then_some(alias)
}

/// Whether the index entry `link` points into `devices/virtual`.
fn is_virtual(link: &Path) -> bool {
    std::fs::read_link(link).is_ok_and(|target| {
        let parts: Vec<_> = target.components().map(|c| c.as_os_str()).collect();
        parts
            .windows(2)
            .any(|w| w[0] == "devices" && w[1] == "virtual")
    })
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
    fn reads_the_modalias_of_every_device_the_bus_and_class_indexes_list() {
        let tmp = tempfile::tempdir().unwrap();
        let sys = tmp.path().to_path_buf();
        // Each index entry is a link into devices/, as sysfs makes them.
        let device = |path: &str, index: &str| {
            let dir = sys.join("devices").join(path);
            std::fs::create_dir_all(&dir).unwrap();
            let index = sys.join(index);
            std::fs::create_dir_all(&index).unwrap();
            let name = path.rsplit('/').next().unwrap();
            let depth = index.strip_prefix(&sys).unwrap().components().count();
            let up = "../".repeat(depth);
            std::os::unix::fs::symlink(format!("{up}devices/{path}"), index.join(name)).unwrap();
            dir
        };
        let mmc = device("platform/fe340000.mmc", "bus/platform/devices");
        std::fs::write(mmc.join("modalias"), "of:NmmcT(null)Cbrcm,bcm2711-emmc2\n").unwrap();
        let phy = device("platform/mdio/phy1", "bus/mdio_bus/devices");
        std::fs::write(
            phy.join("uevent"),
            "OF_NAME=ethernet-phy\nMODALIAS=mdio:01100000000000001011100000101010\n",
        )
        .unwrap();
        let button = device("LNXSYSTM:00/LNXPWRBN:00/input/input3", "class/input");
        std::fs::write(
            button.join("modalias"),
            "input:b0019v0000p0001e0000-e0,1,k74\n",
        )
        .unwrap();
        let tty = device("virtual/tty/tty0", "class/tty");
        std::fs::write(tty.join("modalias"), "should-not-count").unwrap();
        let mut found: Vec<String> = device_links(&sys)
            .iter()
            .filter_map(|link| device_modalias(link))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                "input:b0019v0000p0001e0000-e0,1,k74",
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
