//! `/boot`, out of the root file system. Every board boots its kernel from outside the root
//! (QEMU's `-kernel`, the Pi's FAT partition), so what the kernel and firmware packages put
//! under `/boot` would only be dead weight there. A board's boot medium takes what it loads
//! from here; the rest is recorded as left out, with why.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::outputs::manifest::LeftOut;
use crate::rootfs::{FileData, NodeKind, RootPath, RootfsTree};

/// Where one `/boot` file went instead of the root file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Placement {
    /// Written as the kernel the board boots (QEMU's `-kernel`, `kernel8.img`).
    BootedKernel,
    /// Copied onto the board's boot partition.
    BootPartition,
}

pub struct BootDir {
    files: RootfsTree,
}

impl BootDir {
    /// Move `/boot`'s contents out of `tree`, leaving `/boot` as an empty directory.
    pub fn take(tree: &mut RootfsTree) -> Result<BootDir> {
        let files = tree.split_off(&RootPath::new("/boot")?)?;
        Ok(BootDir { files })
    }

    /// A regular file, by its path in the image (`/boot/start4.elf`).
    pub fn file(&self, path: &RootPath) -> Option<&FileData> {
        self.files.file_data(path)
    }

    /// Every regular file, in path order.
    pub fn files(&self) -> impl Iterator<Item = (&RootPath, &FileData)> {
        self.files.iter().filter_map(|(p, n)| match &n.kind {
            NodeKind::File(data) => Some((p, data)),
            _ => None,
        })
    }

    /// What the image left out, grouped by reason: every file, since none stays in the root;
    /// `placed` says which the board's boot medium carries.
    pub fn left_out(&self, placed: &BTreeMap<RootPath, Placement>) -> Vec<LeftOut> {
        let mut groups: BTreeMap<&'static str, Vec<(&RootPath, u64)>> = BTreeMap::new();
        for (path, data) in self.files() {
            let reason = match placed.get(path) {
                Some(Placement::BootedKernel) => {
                    "the kernel: the board boots it from outside the root file system (QEMU's -kernel, or kernel8.img on the Pi's boot partition)"
                }
                Some(Placement::BootPartition) => {
                    "on the board's boot partition, where the firmware loads it; not needed again in the root"
                }
                None => "not loaded by this board: kernel build metadata (System.map, config), device trees of other machines, firmware variants it does not start",
            };
            groups
                .entry(reason)
                .or_default()
                .push((path, data.len() as u64));
        }
        groups
            .into_iter()
            .map(|(reason, files)| LeftOut {
                what: describe(&files),
                files: Some(files.len()),
                bytes: Some(files.iter().map(|(_, b)| b).sum()),
                reason: reason.to_string(),
            })
            .collect()
    }
}

/// One path, or a count with the largest few.
fn describe(files: &[(&RootPath, u64)]) -> String {
    if let [(path, _)] = files {
        return path.to_absolute();
    }
    let mut largest: Vec<&(&RootPath, u64)> = files.iter().collect();
    largest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let named: Vec<String> = largest
        .iter()
        .take(4)
        .map(|(p, _)| p.to_absolute())
        .collect();
    format!(
        "{} files under /boot, the largest {}",
        files.len(),
        named.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::Meta;

    #[test]
    fn boot_leaves_the_root_and_every_file_is_accounted_for() {
        let mut tree = RootfsTree::new(0);
        let meta = Meta::root(0o644, 0);
        for (path, len) in [
            ("/boot/vmlinuz-virt", 10),
            ("/boot/System.map-6.18", 4),
            ("/boot/dtbs/a.dtb", 2),
            ("/boot/start4.elf", 3),
            ("/usr/bin/x", 1),
        ] {
            tree.add_file(RootPath::new(path).unwrap(), vec![0; len], meta.clone())
                .unwrap();
        }
        let boot = BootDir::take(&mut tree).unwrap();
        let left: Vec<&str> = tree.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(left, ["", "boot", "usr", "usr/bin", "usr/bin/x"]);
        let kernel = RootPath::new("/boot/vmlinuz-virt").unwrap();
        assert_eq!(boot.file(&kernel).unwrap().len(), 10);

        let placed = BTreeMap::from([
            (kernel, Placement::BootedKernel),
            (
                RootPath::new("/boot/start4.elf").unwrap(),
                Placement::BootPartition,
            ),
        ]);
        let out = boot.left_out(&placed);
        assert_eq!(out.iter().map(|l| l.files.unwrap()).sum::<usize>(), 4);
        assert_eq!(out.iter().map(|l| l.bytes.unwrap()).sum::<u64>(), 19);
        let unused = out
            .iter()
            .find(|l| l.reason.starts_with("not loaded"))
            .unwrap();
        assert_eq!(unused.files, Some(2));
        assert!(
            unused.what.contains("/boot/System.map-6.18"),
            "{}",
            unused.what
        );
        assert!(out.iter().any(|l| l.what == "/boot/vmlinuz-virt"));
    }
}
