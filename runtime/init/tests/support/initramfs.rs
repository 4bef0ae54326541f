//! A newc cpio initramfs built in memory, like the image builder's, for boot tests.

use std::io::Write;

use cpio::newc::{Builder, ModeFileType};

#[derive(Default)]
pub struct Initramfs {
    entries: Vec<(Builder, Vec<u8>)>,
    names: std::collections::HashSet<String>,
    next_ino: u32,
}

impl Initramfs {
    fn push(&mut self, name: &str, kind: ModeFileType, mode: u32, data: Vec<u8>) -> Builder {
        self.next_ino += 1;
        self.names.insert(name.trim_matches('/').to_string());
        let nlink = if matches!(kind, ModeFileType::Directory) {
            2
        } else {
            1
        };
        let builder = Builder::new(name.trim_start_matches('/'))
            .ino(self.next_ino)
            .mode(mode)
            .set_mode_file_type(kind)
            .nlink(nlink);
        self.entries.push((builder.clone(), data));
        builder
    }

    /// A directory; missing parents are added first, an existing one is kept.
    pub fn dir(&mut self, path: &str, mode: u32) {
        if self.has(path.trim_matches('/')) {
            return;
        }
        self.parents(path);
        self.push(path, ModeFileType::Directory, mode, Vec::new());
    }

    /// A file; missing parent directories are added first.
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        self.parents(path);
        self.push(path, ModeFileType::Regular, mode, data);
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.parents(path);
        self.push(
            path,
            ModeFileType::Symlink,
            0o777,
            target.as_bytes().to_vec(),
        );
    }

    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        self.parents(path);
        self.push(path, ModeFileType::Char, mode, Vec::new());
        let last = self.entries.pop().unwrap();
        self.entries
            .push((last.0.rdev_major(major).rdev_minor(minor), last.1));
    }

    fn parents(&mut self, path: &str) {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        for depth in 1..parts.len() {
            let dir = parts[..depth].join("/");
            if !self.has(&dir) {
                self.dir(&dir, 0o755);
            }
        }
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::new();
        for (builder, data) in self.entries {
            let mut writer = builder.write(&mut out, data.len() as u32);
            writer.write_all(&data).unwrap();
            writer.finish().unwrap();
        }
        cpio::newc::trailer(&mut out).unwrap();
        out
    }
}
