//! A power key wired to a GPIO line, as the device tree's `gpio-keys` node describes it
//! (QEMU arm64 `virt` booted without firmware: PL061 line 3, `linux,code = KEY_POWER`).
//!
//! Alpine's arm64 `linux-virt` has no `gpio_keys` driver, so no input device ever appears for
//! this key: init asks the GPIO character device (`/dev/gpiochipN`, uAPI v2) for edge events
//! on the line itself. Hand-written structs from `<linux/gpio.h>`: no crate covers v2 leanly.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

use crate::input_event::KEY_POWER;

/// Where the kernel exposes the flattened device tree it booted with.
const DEVICE_TREE: &str = "/sys/firmware/devicetree/base";
const GPIO_DEVICES: &str = "/sys/bus/gpio/devices";

/// A GPIO line that is a power key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioKey {
    /// The GPIO controller's device-tree node.
    pub controller: PathBuf,
    pub line: u32,
    pub active_low: bool,
}

/// The `gpio-keys` entries with `linux,code = KEY_POWER` in the device tree at `root`.
pub fn power_keys(root: &Path) -> Vec<GpioKey> {
    let mut nodes = Vec::new();
    walk(root, &mut nodes);
    let mut keys = Vec::new();
    for node in &nodes {
        let compatible = std::fs::read(node.join("compatible")).unwrap_or_default();
        if !compatible.split(|b| *b == 0).any(|c| c == b"gpio-keys") {
            continue;
        }
        for child in nodes.iter().filter(|n| n.parent() == Some(node.as_path())) {
            let code = read_cells(&child.join("linux,code"));
            let gpios = read_cells(&child.join("gpios"));
            if code.first() != Some(&(KEY_POWER as u32)) || gpios.len() < 2 {
                continue;
            }
            let Some(controller) = nodes
                .iter()
                .find(|n| read_cells(&n.join("phandle")).first() == Some(&gpios[0]))
            else {
                continue;
            };
            keys.push(GpioKey {
                controller: controller.clone(),
                line: gpios[1],
                // GPIO_ACTIVE_LOW is bit 0 of the flags cell, when there is one.
                active_low: gpios.get(2).is_some_and(|flags| flags & 1 != 0),
            });
        }
    }
    keys
}

/// The power keys of the running kernel's device tree (none on ACPI or x86 machines).
pub fn system_power_keys() -> Vec<GpioKey> {
    power_keys(Path::new(DEVICE_TREE))
}

fn walk(dir: &Path, nodes: &mut Vec<PathBuf>) {
    nodes.push(dir.to_path_buf());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&entry.path(), nodes);
        }
    }
}

/// A device-tree property as big-endian 32-bit cells.
fn read_cells(path: &Path) -> Vec<u32> {
    std::fs::read(path)
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The `/dev/gpiochipN` whose controller is the device-tree node `controller`.
pub fn chip_for(controller: &Path) -> Option<PathBuf> {
    let want = std::fs::canonicalize(controller).ok()?;
    for entry in std::fs::read_dir(GPIO_DEVICES).ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("gpiochip") {
            continue;
        }
        let Ok(chip) = std::fs::canonicalize(entry.path()) else {
            continue;
        };
        // The chip's own node link, or its parent device's (older kernels).
        let nodes = [chip.join("of_node"), chip.join("../of_node")];
        if nodes
            .iter()
            .any(|n| std::fs::canonicalize(n).is_ok_and(|n| n == want))
        {
            return Some(Path::new("/dev").join(name));
        }
    }
    None
}

const GPIO_V2_LINES_MAX: usize = 64;
const GPIO_V2_LINE_NUM_ATTRS_MAX: usize = 10;
const GPIO_V2_LINE_FLAG_ACTIVE_LOW: u64 = 1 << 1;
const GPIO_V2_LINE_FLAG_INPUT: u64 = 1 << 2;
const GPIO_V2_LINE_FLAG_EDGE_RISING: u64 = 1 << 4;
/// `gpio_v2_line_event.id` of a rising edge.
pub const GPIO_V2_LINE_EVENT_RISING_EDGE: u32 = 1;
/// `sizeof(struct gpio_v2_line_event)`.
pub const LINE_EVENT_SIZE: usize = 48;

#[repr(C)]
struct LineConfigAttribute {
    id: u32,
    padding: u32,
    value: u64,
    mask: u64,
}

#[repr(C)]
struct LineConfig {
    flags: u64,
    num_attrs: u32,
    padding: [u32; 5],
    attrs: [LineConfigAttribute; GPIO_V2_LINE_NUM_ATTRS_MAX],
}

#[repr(C)]
struct LineRequest {
    offsets: [u32; GPIO_V2_LINES_MAX],
    consumer: [u8; 32],
    config: LineConfig,
    num_lines: u32,
    event_buffer_size: u32,
    padding: [u32; 5],
    fd: i32,
}

nix::ioctl_readwrite!(gpio_v2_get_line, 0xB4, 0x07, LineRequest);

/// Requests `key`'s line on `chip` as an input reporting rising edges of the pressed state;
/// read [`LINE_EVENT_SIZE`]-byte events from the returned file.
pub fn request_edges(chip: &Path, key: &GpioKey) -> std::io::Result<File> {
    let chip = File::open(chip)?;
    // SAFETY: every field is an integer or an array of them; all-zero is a valid request.
    let mut request: LineRequest = unsafe { std::mem::zeroed() };
    request.offsets[0] = key.line;
    request.num_lines = 1;
    request.consumer[..9].copy_from_slice(b"edge-init");
    request.config.flags = GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING;
    if key.active_low {
        request.config.flags |= GPIO_V2_LINE_FLAG_ACTIVE_LOW;
    }
    // SAFETY: the request lives across the call and matches the kernel's layout.
    unsafe { gpio_v2_get_line(chip.as_raw_fd(), &mut request) }.map_err(std::io::Error::from)?;
    // SAFETY: on success the kernel returned a new file descriptor that nobody else owns.
    Ok(unsafe { File::from_raw_fd(request.fd) })
}

/// Whether a `struct gpio_v2_line_event` is a rising edge (the key going down).
pub fn is_press(event: &[u8; LINE_EVENT_SIZE]) -> bool {
    u32::from_ne_bytes([event[8], event[9], event[10], event[11]]) == GPIO_V2_LINE_EVENT_RISING_EDGE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device tree shaped like QEMU `virt`'s, as the kernel shows it in sysfs.
    fn fake_tree(flags: Option<u32>) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "edge-init-dt-{}-{}",
            std::process::id(),
            flags.map_or("none".to_string(), |f| f.to_string())
        ));
        let _ = std::fs::remove_dir_all(&root);
        let pl061 = root.join("pl061@9030000");
        let key = root.join("gpio-keys/poweroff");
        let other = root.join("gpio-keys/other");
        for dir in [&pl061, &key, &other] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let cells = |values: &[u32]| {
            values
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect::<Vec<_>>()
        };
        std::fs::write(pl061.join("phandle"), cells(&[0x8003])).unwrap();
        std::fs::write(root.join("gpio-keys/compatible"), b"gpio-keys\0").unwrap();
        std::fs::write(key.join("linux,code"), cells(&[116])).unwrap();
        let mut gpios = vec![0x8003, 3];
        gpios.extend(flags);
        std::fs::write(key.join("gpios"), cells(&gpios)).unwrap();
        std::fs::write(other.join("linux,code"), cells(&[115])).unwrap();
        std::fs::write(other.join("gpios"), cells(&[0x8003, 4, 0])).unwrap();
        root
    }

    #[test]
    fn finds_qemu_virt_power_key() {
        let root = fake_tree(Some(0));
        assert_eq!(
            power_keys(&root),
            vec![GpioKey {
                controller: root.join("pl061@9030000"),
                line: 3,
                active_low: false
            }]
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn active_low_flag_and_two_cell_gpios() {
        let root = fake_tree(Some(1));
        assert!(power_keys(&root)[0].active_low);
        std::fs::remove_dir_all(root).unwrap();
        let root = fake_tree(None);
        assert!(!power_keys(&root)[0].active_low);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn no_device_tree_means_no_keys() {
        assert!(power_keys(Path::new("/nonexistent/device-tree")).is_empty());
    }

    #[test]
    fn request_layout_matches_the_kernel() {
        // sizeof(struct gpio_v2_line_request) in <linux/gpio.h>; the ioctl number encodes it.
        assert_eq!(std::mem::size_of::<LineRequest>(), 592);
    }

    #[test]
    fn rising_edge_is_a_press() {
        let mut event = [0u8; LINE_EVENT_SIZE];
        event[8..12].copy_from_slice(&1u32.to_ne_bytes());
        assert!(is_press(&event));
        event[8..12].copy_from_slice(&2u32.to_ne_bytes());
        assert!(!is_press(&event));
    }
}
