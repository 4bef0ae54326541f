//! What the kernel says about a disk: sysfs for its size, model, partitions and holders,
//! mountinfo and swaps for what uses it. Every path is rooted in [`SystemPaths`] so the
//! guards can be tested on a sysfs-like tree in a temporary folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where the kernel's views live: the real ones by default.
#[derive(Debug, Clone)]
pub struct SystemPaths {
    pub sys: PathBuf,
    pub dev: PathBuf,
    pub mountinfo: PathBuf,
    pub swaps: PathBuf,
}

impl Default for SystemPaths {
    fn default() -> Self {
        SystemPaths {
            sys: "/sys".into(),
            dev: "/dev".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            swaps: "/proc/swaps".into(),
        }
    }
}

/// A whole disk and everything that keeps it from being safely overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    /// Kernel name: `sdb`, `mmcblk0`.
    pub name: String,
    pub size: u64,
    /// Why it counts as removable, or `None`.
    pub removable: Option<&'static str>,
    /// Vendor and model as the device reports them, when it does.
    pub model: Option<String>,
    pub partitions: Vec<Partition>,
    pub uses: Vec<Use>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    pub size: u64,
}

/// Something that has the disk or one of its partitions open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    /// `device` (the disk, a partition, or a device-mapper volume on them) is mounted there.
    Mounted {
        device: String,
        mount_point: String,
    },
    Swap {
        device: String,
    },
    /// `holder` (LVM, dm-crypt, RAID) is built on `device`.
    Held {
        device: String,
        holder: String,
    },
}

impl std::fmt::Display for Use {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Use::Mounted {
                device,
                mount_point,
            } => write!(f, "{device} is mounted at {mount_point}"),
            Use::Swap { device } => write!(f, "{device} is in use as swap"),
            Use::Held { device, holder } => write!(f, "{device} is used by {holder}"),
        }
    }
}

impl DiskInfo {
    /// Does this disk hold the running system's root file system?
    pub fn holds_root(&self) -> bool {
        self.uses
            .iter()
            .any(|u| matches!(u, Use::Mounted { mount_point, .. } if mount_point == "/"))
    }
}

impl SystemPaths {
    /// Gather what the kernel knows about block device `major:minor`, which must be a whole
    /// disk (an image holds its own partition table, so a partition is never the right target).
    pub fn disk(&self, major: u32, minor: u32) -> Result<DiskInfo> {
        let node = self.node_of_devnum(major, minor).with_context(|| {
            format!(
                "the kernel has no {}/dev/block/{major}:{minor} for this device; is sysfs mounted?",
                self.sys.display()
            )
        })?;
        let name = file_name(&node);
        if node.join("partition").exists() {
            let disk = node.parent().map(file_name).unwrap_or_default();
            bail!("{name} is a partition of {disk}; flash the whole disk: /dev/{disk}");
        }
        let size = read_u64(&node.join("size")).with_context(|| format!("size of {name}"))? * 512;
        let mut partitions: Vec<(u64, Partition)> = Vec::new();
        for entry in
            std::fs::read_dir(&node).with_context(|| format!("cannot list {}", node.display()))?
        {
            let path = entry?.path();
            if let Ok(number) = read_u64(&path.join("partition")) {
                let size = read_u64(&path.join("size")).unwrap_or(0) * 512;
                partitions.push((
                    number,
                    Partition {
                        name: file_name(&path),
                        size,
                    },
                ));
            }
        }
        partitions.sort_by_key(|(n, _)| *n);
        let partitions: Vec<Partition> = partitions.into_iter().map(|(_, p)| p).collect();
        let uses = self.uses_of(&name, &node, &partitions)?;
        Ok(DiskInfo {
            removable: removable(&node),
            model: model(&node),
            name,
            size,
            partitions,
            uses,
        })
    }

    fn uses_of(&self, disk: &str, node: &Path, partitions: &[Partition]) -> Result<Vec<Use>> {
        let mut uses = Vec::new();
        let mountinfo = std::fs::read_to_string(&self.mountinfo).with_context(|| {
            format!(
                "cannot read {} to see what is mounted",
                self.mountinfo.display()
            )
        })?;
        for m in mountinfo.lines().filter_map(parse_mountinfo_line) {
            let node = self
                .node_of_devnum(m.major, m.minor)
                .or_else(|| self.node_of_dev_path(&m.source));
            if let Some(node) = node {
                if self.disks_under(&node, 0).contains(disk) {
                    uses.push(Use::Mounted {
                        device: file_name(&node),
                        mount_point: m.mount_point,
                    });
                }
            }
        }
        // Without swap there may be no /proc/swaps at all.
        let swaps = std::fs::read_to_string(&self.swaps).unwrap_or_default();
        for source in swaps
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
        {
            if let Some(node) = self.node_of_dev_path(&unescape(source)) {
                if self.disks_under(&node, 0).contains(disk) {
                    uses.push(Use::Swap {
                        device: file_name(&node),
                    });
                }
            }
        }
        let parts = partitions
            .iter()
            .map(|p| (p.name.clone(), node.join(&p.name)));
        for (device, dir) in std::iter::once((disk.to_string(), node.to_path_buf())).chain(parts) {
            for holder in list_names(&dir.join("holders")) {
                uses.push(Use::Held {
                    device: device.clone(),
                    holder,
                });
            }
        }
        Ok(uses)
    }

    /// The whole disks a block device lives on: itself, its parent disk if it is a partition,
    /// or (for device-mapper and RAID volumes) the disks under its slaves.
    fn disks_under(&self, node: &Path, depth: u32) -> BTreeSet<String> {
        let slaves = list_names(&node.join("slaves"));
        if !slaves.is_empty() && depth < 16 {
            return slaves
                .iter()
                .filter_map(|s| canonical(&self.sys.join("class/block").join(s)))
                .flat_map(|n| self.disks_under(&n, depth + 1))
                .collect();
        }
        let disk = if node.join("partition").exists() {
            node.parent().unwrap_or(node)
        } else {
            node
        };
        BTreeSet::from([file_name(disk)])
    }

    fn node_of_devnum(&self, major: u32, minor: u32) -> Option<PathBuf> {
        canonical(&self.sys.join(format!("dev/block/{major}:{minor}")))
    }

    /// `/dev/sdb1`, `/dev/mapper/root` or `/dev/disk/by-uuid/...` -> its sysfs node.
    fn node_of_dev_path(&self, source: &str) -> Option<PathBuf> {
        let rel = source.strip_prefix("/dev/")?;
        let name = canonical(&self.dev.join(rel))
            .map(|p| file_name(&p))
            .unwrap_or_else(|| file_name(Path::new(rel)));
        canonical(&self.sys.join("class/block").join(name))
    }
}

struct Mount {
    major: u32,
    minor: u32,
    mount_point: String,
    source: String,
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let (major, minor) = fields.get(2)?.split_once(':')?;
    Some(Mount {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        mount_point: unescape(fields.get(4)?),
        source: unescape(right.split(' ').nth(1).unwrap_or("")),
    })
}

/// The kernel writes space, tab, newline and backslash in these files as `\ooo` octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8) + (c - b'0')),
                );
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Card readers and USB sticks are what people flash; built-in SD slots often report
/// `removable` 0, so an SD card (not eMMC, which is soldered on) or a USB disk counts too.
fn removable(node: &Path) -> Option<&'static str> {
    if read_trimmed(&node.join("removable")).as_deref() == Some("1") {
        return Some("removable media");
    }
    if read_trimmed(&node.join("device/type")).as_deref() == Some("SD") {
        return Some("SD card");
    }
    if node.to_string_lossy().contains("/usb") {
        return Some("USB");
    }
    None
}

fn model(node: &Path) -> Option<String> {
    let dev = node.join("device");
    let parts: Vec<String> = ["vendor", "model", "name"]
        .iter()
        .filter_map(|f| read_trimmed(&dev.join(f)))
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn canonical(p: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(p).ok()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn list_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_u64(p: &Path) -> Result<u64> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("{} holds {:?}, not a number", p.display(), text.trim()))
}

#[cfg(test)]
#[path = "sysfs_tests.rs"]
mod tests;
