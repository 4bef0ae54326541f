//! Writers checked with the real tools as oracles (cpio, unsquashfs, fsck, mtools, sfdisk,
//! bmaptool, qemu-img).

mod archives;
mod disks;
mod filesystems;

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::rootfs::{Meta, Node, NodeKind, RootPath, RootfsTree};

pub const T: u64 = 1_700_000_000;

pub fn p(s: &str) -> RootPath {
    RootPath::new(s).unwrap()
}

/// A small root file system with every kind of node.
pub fn sample_tree() -> RootfsTree {
    let mut t = RootfsTree::new(T);
    t.add_dir(p("etc"), Meta::root(0o755, T + 1)).unwrap();
    t.add_file(
        p("etc/hostname"),
        b"edge\n".to_vec(),
        Meta::root(0o644, T + 2),
    )
    .unwrap();
    t.add_file(
        p("bin/busybox"),
        vec![0x7f; 70_000],
        Meta::root(0o755, T + 3),
    )
    .unwrap();
    t.add_symlink(p("bin/sh"), "busybox", Meta::root(0o777, T + 4))
        .unwrap();
    t.insert(
        p("bin/ash"),
        Node {
            kind: NodeKind::Hardlink(p("bin/busybox")),
            meta: Meta::root(0o755, T + 3),
        },
    )
    .unwrap();
    let mut user = Meta::root(0o600, T + 5);
    user.uid = 1000;
    user.gid = 1000;
    t.add_file(p("home/edge/secret"), b"s3cret".to_vec(), user)
        .unwrap();
    t.add_dir(p("tmp"), Meta::root(0o1777, T)).unwrap();
    t.insert(
        p("dev/console"),
        Node {
            kind: NodeKind::CharDevice { major: 5, minor: 1 },
            meta: Meta::root(0o600, T),
        },
    )
    .unwrap();
    t.insert(
        p("dev/vda"),
        Node {
            kind: NodeKind::BlockDevice {
                major: 254,
                minor: 3,
            },
            meta: Meta::root(0o660, T),
        },
    )
    .unwrap();
    t
}

/// A boot partition's contents: files and directories only.
pub fn boot_tree() -> RootfsTree {
    let mut t = RootfsTree::new(T);
    t.add_file(
        p("config.txt"),
        b"arm_64bit=1\nkernel=Image\n".to_vec(),
        Meta::root(0o644, T),
    )
    .unwrap();
    t.add_file(p("Image"), vec![0xa5; 300_000], Meta::root(0o644, T))
        .unwrap();
    t.add_file(
        p("overlays/disable-bt.dtbo"),
        vec![1, 2, 3],
        Meta::root(0o644, T),
    )
    .unwrap();
    t.add_file(
        p("EFI/BOOT/BOOTAA64.EFI"),
        vec![0x4d; 5000],
        Meta::root(0o644, T),
    )
    .unwrap();
    t
}

pub fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Run a tool and return its stdout; panics with its output when it fails.
pub use edgeimg_test_support::tool;

pub fn sh(script: &str) -> String {
    tool(Command::new("sh").args(["-c", script]))
}

/// Files in `dir`, for checking that failed writers leave nothing behind.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
