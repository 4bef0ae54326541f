//! The flash target and the guards that refuse a wrong one. Everything here only looks: the
//! target is first opened for writing in [`super::write`], after these checks passed.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bytesize::ByteSize;

use super::source::Source;
use super::sysfs::{DiskInfo, SystemPaths, Use};

#[derive(Debug)]
pub enum Target {
    /// A whole disk: an SD card, a USB stick.
    Disk {
        /// As the user named it (may be a /dev/disk/by-id/... link).
        path: PathBuf,
        /// The device number it had when inspected; checked again when it is opened.
        rdev: u64,
        info: DiskInfo,
    },
    /// A regular file (with `--file`): written beside and renamed into place when verified.
    File {
        path: PathBuf,
        /// Its size, when it already exists.
        existing: Option<u64>,
    },
}

impl Target {
    /// Find out what `path` is. `allow_file`: a regular file may be the target.
    pub fn inspect(path: &Path, allow_file: bool, sys: &SystemPaths) -> Result<Target> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && allow_file => {
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                if !dir.is_dir() {
                    bail!(
                        "cannot create {}: the folder {} does not exist",
                        path.display(),
                        dir.display()
                    );
                }
                return Ok(Target::File {
                    path: path.to_path_buf(),
                    existing: None,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} does not exist; name the card's device (e.g. /dev/sdb; `lsblk` lists them), or pass --file to write an image file",
                path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot look at {}", path.display()))
            }
        };
        let kind = meta.file_type();
        if kind.is_block_device() {
            let rdev = meta.rdev();
            let info = sys
                .disk(libc::major(rdev), libc::minor(rdev))
                .with_context(|| format!("cannot flash {}", path.display()))?;
            return Ok(Target::Disk {
                path: path.to_path_buf(),
                rdev,
                info,
            });
        }
        if kind.is_file() {
            if !allow_file {
                bail!(
                    "{} is a regular file, not a disk; pass --file to write the image into it (its contents are replaced), or name the card's device (e.g. /dev/sdb; `lsblk` lists them)",
                    path.display()
                );
            }
            // Resolve links so the finished file replaces the file they point to, not them.
            let path = std::fs::canonicalize(path)
                .with_context(|| format!("cannot resolve {}", path.display()))?;
            return Ok(Target::File {
                path,
                existing: Some(meta.len()),
            });
        }
        let what = if kind.is_dir() {
            "a folder"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_fifo() {
            "a pipe"
        } else {
            "a socket"
        };
        bail!(
            "{} is {what}: neither a block device nor (with --file) a regular file; name the card's device, e.g. /dev/sdb (`lsblk` lists them)",
            path.display()
        )
    }

    pub fn path(&self) -> &Path {
        match self {
            Target::Disk { path, .. } | Target::File { path, .. } => path,
        }
    }

    /// Refuse a target that must not or cannot take this image.
    pub fn check(&self, source: &Source, force: bool) -> Result<()> {
        match self {
            Target::Disk { path, info, .. } => check_disk(path, info, source.size, force),
            Target::File { path, existing } => {
                if existing.is_some() {
                    let ours = [
                        Some(source.image.as_path()),
                        source.bmap.as_ref().map(|(p, _)| p.as_path()),
                    ];
                    for input in ours.into_iter().flatten() {
                        if same_file(path, input) {
                            bail!(
                                "{} is the {} being flashed; name another file as the target",
                                path.display(),
                                if input == source.image {
                                    "image"
                                } else {
                                    "bmap"
                                }
                            );
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// What the user is about to overwrite, for the confirmation prompt.
    pub fn describe(&self) -> String {
        match self {
            Target::Disk { path, info, .. } => {
                let dev = format!("/dev/{}", info.name);
                let shown = if path == Path::new(&dev) {
                    dev
                } else {
                    format!("{} ({dev})", path.display())
                };
                let mut s = format!(
                    "{shown}: {}, {}, {}\n",
                    info.model.as_deref().unwrap_or("unknown model"),
                    ByteSize(info.size),
                    info.removable
                        .map_or("not removable".to_string(), |r| format!("removable ({r})"))
                );
                if info.partitions.is_empty() {
                    s.push_str("  no partitions\n");
                }
                for p in &info.partitions {
                    s.push_str(&format!(
                        "  {:<16} {:>12}\n",
                        p.name,
                        ByteSize(p.size).to_string()
                    ));
                }
                s
            }
            Target::File {
                path,
                existing: Some(len),
            } => {
                format!("{}: existing file, {}\n", path.display(), ByteSize(*len))
            }
            Target::File {
                path,
                existing: None,
            } => format!("{}: new file\n", path.display()),
        }
    }
}

/// The guards for a whole disk, in order of how bad a mistake would be.
pub fn check_disk(path: &Path, info: &DiskInfo, image_size: u64, force: bool) -> Result<()> {
    let shown = path.display();
    if info.holds_root() {
        bail!(
            "refusing to flash {shown}: it holds this computer's root file system (/); name the card's device instead (`lsblk` lists them; the card is the one that appears when you insert it). --force does not override this"
        );
    }
    if !info.uses.is_empty() {
        let uses: Vec<String> = info.uses.iter().map(Use::to_string).collect();
        let fix = match info.uses.iter().find(|u| matches!(u, Use::Mounted { .. })) {
            Some(Use::Mounted { device, .. }) => {
                format!("unmount it first (sudo umount /dev/{device})")
            }
            _ => "stop using it first (swapoff, or close the volume built on it)".to_string(),
        };
        bail!(
            "refusing to flash {shown}: {}; {fix}, then try again",
            uses.join(", ")
        );
    }
    if info.size == 0 {
        bail!("{shown} has a size of 0 bytes: is a card inserted in the reader?");
    }
    if info.size < image_size {
        bail!(
            "{shown} holds {} ({} bytes) but the image is {} ({image_size} bytes); use a card of at least {}",
            ByteSize(info.size),
            info.size,
            ByteSize(image_size),
            ByteSize(image_size)
        );
    }
    if info.removable.is_none() && !force {
        bail!(
            "{shown} ({}, {}) is not a removable disk, so it may be one of this computer's own disks; if it really is the one to overwrite, pass --force",
            info.model.as_deref().unwrap_or("unknown model"),
            ByteSize(info.size)
        );
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
