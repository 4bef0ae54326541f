//! The guards on a sysfs-like tree: disks, partitions, device-mapper volumes, mounts, swap.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;
use crate::flash::target::check_disk;

const MIB: u64 = 1 << 20;

struct FakeSys {
    _dir: tempfile::TempDir,
    paths: SystemPaths,
}

impl FakeSys {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "sys/devices",
            "sys/class/block",
            "sys/dev/block",
            "dev/mapper",
            "proc",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let paths = SystemPaths {
            sys: root.join("sys"),
            dev: root.join("dev"),
            mountinfo: root.join("proc/mountinfo"),
            swaps: root.join("proc/swaps"),
        };
        std::fs::write(
            &paths.mountinfo,
            "22 27 0:21 / /proc rw,relatime - proc proc rw\n",
        )
        .unwrap();
        FakeSys { _dir: dir, paths }
    }

    /// A block node at `sys/devices/<parent>/block/<name>`, linked as sysfs links it.
    fn node(&self, at: &Path, name: &str, devnum: &str, size: u64) -> PathBuf {
        let node = at.join(name);
        std::fs::create_dir_all(node.join("holders")).unwrap();
        std::fs::create_dir_all(node.join("slaves")).unwrap();
        std::fs::write(node.join("size"), format!("{}\n", size / 512)).unwrap();
        symlink(&node, self.paths.sys.join("class/block").join(name)).unwrap();
        symlink(&node, self.paths.sys.join("dev/block").join(devnum)).unwrap();
        node
    }

    fn disk(&self, parent: &str, name: &str, devnum: &str, size: u64, removable: bool) -> PathBuf {
        let at = self.paths.sys.join("devices").join(parent).join("block");
        let node = self.node(&at, name, devnum, size);
        std::fs::write(
            node.join("removable"),
            if removable { "1\n" } else { "0\n" },
        )
        .unwrap();
        std::fs::create_dir_all(node.join("device")).unwrap();
        node
    }

    fn partition(&self, disk: &Path, name: &str, devnum: &str, number: u32, size: u64) -> PathBuf {
        let node = self.node(disk, name, devnum, size);
        std::fs::write(node.join("partition"), format!("{number}\n")).unwrap();
        node
    }

    /// A device-mapper volume on `slaves` (LVM, dm-crypt).
    fn dm(&self, name: &str, devnum: &str, slaves: &[&str]) -> PathBuf {
        let at = self.paths.sys.join("devices/virtual/block");
        let node = self.node(&at, name, devnum, 100 * MIB);
        for s in slaves {
            let slave = std::fs::canonicalize(self.paths.sys.join("class/block").join(s)).unwrap();
            symlink(&slave, node.join("slaves").join(s)).unwrap();
            symlink(&node, slave.join("holders").join(name)).unwrap();
        }
        node
    }

    fn mount(&self, devnum: &str, mount_point: &str, source: &str) {
        let mut text = std::fs::read_to_string(&self.paths.mountinfo).unwrap();
        text.push_str(&format!(
            "40 27 {devnum} / {mount_point} rw,relatime shared:1 - ext4 {source} rw\n"
        ));
        std::fs::write(&self.paths.mountinfo, text).unwrap();
    }

    /// An SD card in a reader on USB, with two partitions, nothing mounted.
    fn usb_card() -> (Self, PathBuf) {
        let s = FakeSys::new();
        let sdb = s.disk(
            "pci0000:00/0000:00:14.0/usb2/2-1/host6",
            "sdb",
            "8:16",
            32 * 1024 * MIB,
            true,
        );
        std::fs::write(sdb.join("device/vendor"), "SanDisk \n").unwrap();
        std::fs::write(sdb.join("device/model"), "Ultra           \n").unwrap();
        s.partition(&sdb, "sdb2", "8:18", 2, 30 * 1024 * MIB);
        s.partition(&sdb, "sdb1", "8:17", 1, 256 * MIB);
        (s, sdb)
    }
}

fn refusal(info: &DiskInfo, image_size: u64, force: bool) -> String {
    format!(
        "{:#}",
        check_disk(Path::new("/dev/x"), info, image_size, force).unwrap_err()
    )
}

#[test]
fn removable_card_is_described_and_accepted() {
    let (s, _) = FakeSys::usb_card();
    let info = s.paths.disk(8, 16).unwrap();
    assert_eq!(info.name, "sdb");
    assert_eq!(info.size, 32 * 1024 * MIB);
    assert_eq!(info.model.as_deref(), Some("SanDisk Ultra"));
    assert_eq!(info.removable, Some("removable media"));
    let names: Vec<&str> = info.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["sdb1", "sdb2"], "in partition order");
    assert_eq!(info.partitions[0].size, 256 * MIB);
    assert!(info.uses.is_empty(), "{:?}", info.uses);
    check_disk(Path::new("/dev/sdb"), &info, 256 * MIB, false).unwrap();
}

#[test]
fn card_smaller_than_the_image_is_refused() {
    let (s, _) = FakeSys::usb_card();
    let info = s.paths.disk(8, 16).unwrap();
    let msg = refusal(&info, 33 * 1024 * MIB, true);
    assert!(msg.contains("use a card of at least 33.0 GiB"), "{msg}");
    check_disk(Path::new("/dev/x"), &info, info.size, false).unwrap();
}

#[test]
fn empty_reader_is_refused() {
    let s = FakeSys::new();
    s.disk("pci0000:00/usb1/1-1/host2", "sdc", "8:32", 0, true);
    let msg = refusal(&s.paths.disk(8, 32).unwrap(), MIB, true);
    assert!(msg.contains("is a card inserted"), "{msg}");
}

#[test]
fn the_system_disk_is_refused_even_with_force() {
    let s = FakeSys::new();
    let sda = s.disk(
        "pci0000:00/0000:00:17.0/ata1/host0",
        "sda",
        "8:0",
        512 * 1024 * MIB,
        false,
    );
    s.partition(&sda, "sda1", "8:1", 1, 512 * MIB);
    s.partition(&sda, "sda2", "8:2", 2, 500 * 1024 * MIB);
    s.mount("8:2", "/", "/dev/sda2");
    s.mount("8:1", "/boot/efi", "/dev/sda1");
    let info = s.paths.disk(8, 0).unwrap();
    assert!(info.holds_root());
    assert!(info.uses.contains(&Use::Mounted {
        device: "sda1".into(),
        mount_point: "/boot/efi".into()
    }));
    let msg = refusal(&info, MIB, true);
    assert!(msg.contains("root file system"), "{msg}");
    assert!(msg.contains("--force does not override"), "{msg}");
}

#[test]
fn root_on_a_whole_disk_without_partitions_is_refused() {
    let s = FakeSys::new();
    s.disk(
        "pci0000:00/0000:00:02.0/virtio1",
        "vda",
        "254:0",
        256 * 1024 * MIB,
        false,
    );
    s.mount("254:0", "/", "/dev/vda");
    assert!(s.paths.disk(254, 0).unwrap().holds_root());
}

#[test]
fn root_on_lvm_is_traced_to_its_disk() {
    let s = FakeSys::new();
    let nvme = s.disk(
        "pci0000:00/0000:00:1d.0/nvme/nvme0",
        "nvme0n1",
        "259:0",
        1024 * 1024 * MIB,
        false,
    );
    s.partition(&nvme, "nvme0n1p1", "259:1", 1, 512 * MIB);
    s.partition(&nvme, "nvme0n1p2", "259:2", 2, 1000 * 1024 * MIB);
    s.dm("dm-0", "253:0", &["nvme0n1p2"]);
    // Mounted by a /dev/mapper link, with a device number sysfs does not know (as btrfs does).
    symlink("../dm-0", s.paths.dev.join("mapper/vg-root")).unwrap();
    std::fs::write(s.paths.dev.join("dm-0"), "").unwrap();
    s.mount("0:45", "/", "/dev/mapper/vg-root");
    let info = s.paths.disk(259, 0).unwrap();
    assert!(info.holds_root(), "{:?}", info.uses);
    assert!(info.uses.contains(&Use::Held {
        device: "nvme0n1p2".into(),
        holder: "dm-0".into()
    }));
}

#[test]
fn a_mounted_card_is_refused_with_the_umount_to_run() {
    let (s, _) = FakeSys::usb_card();
    s.mount("8:17", "/media/me/my\\040card", "/dev/sdb1");
    let info = s.paths.disk(8, 16).unwrap();
    assert!(!info.holds_root());
    let msg = refusal(&info, MIB, true);
    assert!(
        msg.contains("sdb1 is mounted at /media/me/my card"),
        "{msg}"
    );
    assert!(msg.contains("sudo umount /dev/sdb1"), "{msg}");
}

#[test]
fn swap_on_the_card_is_refused() {
    let (s, _) = FakeSys::usb_card();
    std::fs::write(
        &s.paths.swaps,
        "Filename\tType\tSize\tUsed\tPriority\n/dev/sdb2 partition\t1000\t0\t-2\n/swapfile file\t10\t0\t-3\n",
    )
    .unwrap();
    let info = s.paths.disk(8, 16).unwrap();
    assert_eq!(
        info.uses,
        [Use::Swap {
            device: "sdb2".into()
        }]
    );
    assert!(refusal(&info, MIB, true).contains("swapoff"));
}

#[test]
fn non_removable_disk_needs_force() {
    let s = FakeSys::new();
    let sdd = s.disk(
        "pci0000:00/0000:00:17.0/ata3/host2",
        "sdd",
        "8:48",
        64 * 1024 * MIB,
        false,
    );
    std::fs::write(sdd.join("device/model"), "Samsung SSD 870\n").unwrap();
    let info = s.paths.disk(8, 48).unwrap();
    assert_eq!(info.removable, None);
    let msg = refusal(&info, MIB, false);
    assert!(msg.contains("not a removable disk"), "{msg}");
    assert!(msg.contains("Samsung SSD 870"), "{msg}");
    assert!(msg.contains("pass --force"), "{msg}");
    check_disk(Path::new("/dev/sdd"), &info, MIB, true).unwrap();
}

#[test]
fn built_in_sd_slot_counts_as_removable_but_emmc_does_not() {
    let s = FakeSys::new();
    let sd = s.disk(
        "platform/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa",
        "mmcblk0",
        "179:0",
        16 * 1024 * MIB,
        false,
    );
    std::fs::write(sd.join("device/type"), "SD\n").unwrap();
    std::fs::write(sd.join("device/name"), "SC16G\n").unwrap();
    let emmc = s.disk(
        "platform/fe330000.mmc/mmc_host/mmc1/mmc1:0001",
        "mmcblk1",
        "179:32",
        16 * 1024 * MIB,
        false,
    );
    std::fs::write(emmc.join("device/type"), "MMC\n").unwrap();
    let sd = s.paths.disk(179, 0).unwrap();
    assert_eq!(sd.removable, Some("SD card"));
    assert_eq!(sd.model.as_deref(), Some("SC16G"));
    assert_eq!(s.paths.disk(179, 32).unwrap().removable, None);
}

#[test]
fn a_partition_is_refused_naming_its_disk() {
    let (s, _) = FakeSys::usb_card();
    let msg = format!("{:#}", s.paths.disk(8, 17).unwrap_err());
    assert!(msg.contains("sdb1 is a partition of sdb"), "{msg}");
    assert!(msg.contains("/dev/sdb"), "{msg}");
}

#[test]
fn unescapes_mountinfo_octal() {
    assert_eq!(unescape(r"/a\040b\011c\134d"), "/a b\tc\\d");
    assert_eq!(unescape(r"/a\0"), r"/a\0");
}
