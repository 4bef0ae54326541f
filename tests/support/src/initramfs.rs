//! A newc initramfs for boot tests, built in the builder's own tree and written by its own cpio
//! writer.

use std::path::Path;

use edgeimg::rootfs::{Meta, Node, NodeKind, RootPath, RootfsTree};
use edgeimg::writers::cpio::write_newc;

use crate::alpine::AlpineRoot;

/// Files are root-owned; the time is fixed.
const MTIME: u64 = 1_700_000_000;

pub struct Initramfs {
    tree: RootfsTree,
}

impl Default for Initramfs {
    fn default() -> Self {
        Initramfs {
            tree: RootfsTree::new(MTIME),
        }
    }
}

impl Initramfs {
    /// An initramfs with these directories (0755) and `/dev/console`, which the kernel opens
    /// for init's stdio before anything mounts devtmpfs.
    pub fn with_dirs(dirs: &[&str]) -> Initramfs {
        let mut image = Initramfs::default();
        for dir in dirs {
            image.dir(dir, 0o755);
        }
        image.char_device("dev/console", 0o600, 5, 1);
        image
    }
}

fn at(path: &str) -> RootPath {
    RootPath::new(path.trim_start_matches('/')).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl Initramfs {
    /// A directory (missing parents are added too).
    pub fn dir(&mut self, path: &str, mode: u32) {
        self.tree
            .add_dir(at(path), Meta::root(mode, MTIME))
            .unwrap();
    }

    /// A file (missing parent directories are added first).
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        self.tree
            .add_file(at(path), data, Meta::root(mode, MTIME))
            .unwrap();
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.tree
            .add_symlink(at(path), target, Meta::root(0o777, MTIME))
            .unwrap();
    }

    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        let node = Node {
            kind: NodeKind::CharDevice { major, minor },
            meta: Meta::root(mode, MTIME),
        };
        self.tree.insert(at(path), node).unwrap();
    }

    /// Alpine's busybox as `/bin/busybox`, with the musl loader it runs on (also under libc's
    /// name, which busybox links against).
    pub fn alpine_busybox(&mut self, root: &AlpineRoot) {
        self.file("bin/busybox", 0o755, root.read("bin/busybox"));
        let loader = root.arch.musl_loader();
        self.file(loader, 0o755, root.read(loader));
        let loader_name = Path::new(loader).file_name().unwrap().to_string_lossy();
        self.symlink(&format!("lib/libc.musl-{}.so.1", root.arch), &loader_name);
    }

    /// The uncompressed newc archive.
    pub fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::new();
        write_newc(&self.tree, &mut out).unwrap();
        out
    }
}
