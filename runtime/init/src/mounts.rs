//! The pseudo and scratch file systems every boot needs.

use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::console;

/// One mount init makes at boot.
struct Mount {
    fstype: &'static str,
    target: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
}

fn boot_mounts() -> [Mount; 6] {
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    [
        Mount {
            fstype: "proc",
            target: "/proc",
            flags: hardened,
            data: None,
        },
        Mount {
            fstype: "sysfs",
            target: "/sys",
            flags: hardened,
            data: None,
        },
        Mount {
            fstype: "devtmpfs",
            target: "/dev",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            data: Some("mode=0755"),
        },
        Mount {
            fstype: "devpts",
            target: "/dev/pts",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            data: Some("gid=5,mode=0620,ptmxmode=0666"),
        },
        Mount {
            fstype: "tmpfs",
            target: "/run",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some("mode=0755"),
        },
        Mount {
            fstype: "tmpfs",
            target: "/tmp",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some("mode=1777"),
        },
    ]
}

/// Mounts /proc, /sys, /dev, /dev/pts, /run and /tmp; skips what is mounted already (a
/// bootloader-less initramfs or a container may have done it) and reports what fails.
pub fn mount_boot_filesystems() {
    for m in boot_mounts() {
        let mounted = std::fs::read_to_string("/proc/self/mounts")
            .map(|table| is_mounted(&table, m.target))
            .unwrap_or(false);
        if mounted {
            continue;
        }
        if let Err(error) = ensure_dir(m.target) {
            console::error(&format!("mount:{}", m.target), error);
            continue;
        }
        if let Err(errno) = mount(Some(m.fstype), m.target, Some(m.fstype), m.flags, m.data) {
            console::error(
                &format!("mount:{}", m.target),
                format!("mounting {} failed: {errno}", m.fstype),
            );
        }
    }
}

/// Makes `/` read-only for everything that runs after init's set-up: a disk boot's squashfs
/// root already is, a kernel + initramfs boot's root (the kernel's rootfs) is not. A per-mount
/// flag (a bind remount), so a debug shell's `mount -o remount,rw /` can still lift it.
/// Scratch space stays writable: /run and /tmp are tmpfs, /data is its own mount.
pub fn make_root_read_only() {
    let Ok(root) = statvfs("/") else {
        return console::error("mount:/", "cannot read the root's mount flags");
    };
    if root.flags().contains(FsFlags::ST_RDONLY) {
        return;
    }
    // A bind remount sets the mount's flags to exactly these: keep the hardening it has.
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NODEV;
    for (kept, flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if root.flags().contains(kept) {
            flags |= flag;
        }
    }
    if let Err(errno) = mount(None::<&str>, "/", None::<&str>, flags, None::<&str>) {
        console::error(
            "mount:/",
            format!("cannot make the root read-only: {errno}"),
        );
    }
}

/// Creates a mount point (a read-only root must already have it).
pub fn ensure_dir(path: &str) -> std::io::Result<()> {
    match nix::unistd::mkdir(path, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(errno) => Err(std::io::Error::from(errno)),
    }
}

/// Whether `target` is a mount point in a `/proc/self/mounts` table.
pub fn is_mounted(table: &str, target: &str) -> bool {
    table
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|mounted| unescape_octal(mounted) == target)
}

/// The kernel writes spaces and tabs in mount paths as `\040`, `\011`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let code =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "rootfs / rootfs rw 0 0\n\
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n\
devtmpfs /dev devtmpfs rw,nosuid,size=1000k 0 0\n\
/dev/vda1 /my\\040data ext4 rw 0 0\n";

    #[test]
    fn finds_mounted_targets() {
        assert!(is_mounted(TABLE, "/proc"));
        assert!(is_mounted(TABLE, "/dev"));
        assert!(!is_mounted(TABLE, "/sys"));
        assert!(!is_mounted(TABLE, "/dev/pts"));
    }

    #[test]
    fn decodes_escaped_spaces() {
        assert!(is_mounted(TABLE, "/my data"));
    }
}
