//! Finding the network interface to configure, from `/sys/class/net`.

use std::path::Path;

const SYS_NET: &str = "/sys/class/net";
/// `ARPHRD_ETHER` in `/sys/class/net/<if>/type`.
const ARPHRD_ETHER: &str = "1";

/// What sysfs tells about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub arp_type: String,
    /// Backed by hardware (has a `device` link), unlike bridges, veths and tunnels.
    pub physical: bool,
}

/// The first physical Ethernet interface by name (`eth0` before `eth1`, `enp0s3` ...).
pub fn first_ethernet(interfaces: &[Interface]) -> Option<&str> {
    let mut candidates: Vec<&Interface> = interfaces
        .iter()
        .filter(|i| i.arp_type == ARPHRD_ETHER && i.physical && i.name != "lo")
        .collect();
    candidates.sort_by(|a, b| a.name.cmp(&b.name));
    candidates.first().map(|i| i.name.as_str())
}

/// Parses `/sys/class/net/<if>/address` (`52:54:00:12:34:56`).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for byte in mac.iter_mut() {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub fn list() -> Vec<Interface> {
    let Ok(entries) = std::fs::read_dir(SYS_NET) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| {
            let dir = entry.path();
            Interface {
                name: entry.file_name().to_string_lossy().into_owned(),
                arp_type: std::fs::read_to_string(dir.join("type"))
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                physical: dir.join("device").exists(),
            }
        })
        .collect()
}

/// `wanted` (or the first Ethernet interface), if it is there now.
pub fn find(wanted: Option<&str>) -> Option<String> {
    match wanted {
        Some(name) => Path::new(SYS_NET)
            .join(name)
            .exists()
            .then(|| name.to_string()),
        None => first_ethernet(&list()).map(str::to_string),
    }
}

/// Whether the interface has a link (a cable in, a peer up). The kernel answers only for an
/// interface that is up; anything unreadable counts as no link.
pub fn carrier(name: &str) -> bool {
    std::fs::read_to_string(Path::new(SYS_NET).join(name).join("carrier"))
        .is_ok_and(|text| text.trim() == "1")
}

pub fn mac_address(name: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(Path::new(SYS_NET).join(name).join("address")).ok()?;
    parse_mac(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, arp_type: &str, physical: bool) -> Interface {
        Interface {
            name: name.to_string(),
            arp_type: arp_type.to_string(),
            physical,
        }
    }

    #[test]
    fn picks_the_first_physical_ethernet() {
        let found = [
            iface("lo", "772", false),
            iface("eth1", "1", true),
            iface("docker0", "1", false),
            iface("eth0", "1", true),
            iface("wwan0", "519", true),
        ];
        assert_eq!(first_ethernet(&found), Some("eth0"));
    }

    #[test]
    fn none_when_only_virtual_interfaces() {
        let found = [iface("lo", "772", false), iface("br0", "1", false)];
        assert_eq!(first_ethernet(&found), None);
    }

    #[test]
    fn parses_sysfs_mac_addresses() {
        assert_eq!(
            parse_mac("52:54:00:12:34:56\n"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
        );
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:56:78"), None);
        assert_eq!(parse_mac("zz:54:00:12:34:56"), None);
    }
}
