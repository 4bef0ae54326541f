//! Disk boots: the kernel starts us from a small initramfs with `root=PARTUUID=...` on its
//! command line. Load the drivers the hardware asks for (coldplug, until the root partition
//! shows up) and the listed ones (the root's file system), mount the read-only root, move the
//! pseudo file systems over, make it `/` and exec the image's own edge-init there.

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use edge_config::{DataPartition, BOOT_MODULES_PATH};
use nix::mount::{mount, MsFlags};
use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};

use crate::modules::{Loader, Until};
use crate::{console, data, modules, mounts, readiness, shutdown};

const NEW_ROOT: &str = "/newroot";
/// The mounts made in the initramfs that the real root keeps (submounts such as /dev/pts
/// move with their parent).
const CARRIED_MOUNTS: [&str; 5] = ["/dev", "/proc", "/sys", "/run", "/tmp"];
/// SD cards under emulation and slow cards take a while to show their partitions.
const ROOT_PATIENCE: Duration = Duration::from_secs(30);

/// linux/magic.h; nix does not export it.
const RAMFS_MAGIC: FsType = FsType(0x8584_58f6_u32 as _);

/// Whether `/` is the kernel's initramfs (ramfs or tmpfs) rather than a real root.
pub fn running_from_initramfs() -> bool {
    statfs("/")
        .map(|fs| fs.filesystem_type() == RAMFS_MAGIC || fs.filesystem_type() == TMPFS_MAGIC)
        .unwrap_or(false)
}

/// `root=` as init understands it: only `PARTUUID=` (device names change between boards,
/// and squashfs has no label).
pub fn parse_root(word: &str) -> Result<String, String> {
    match word.strip_prefix("PARTUUID=") {
        Some(uuid) if !uuid.is_empty() => Ok(uuid.to_ascii_lowercase()),
        _ => Err(format!(
            "root={word} is not supported: name the root partition as root=PARTUUID=<uuid>"
        )),
    }
}

/// Never returns: execs the real init, or powers off with the reason on the console.
pub fn switch_to(root: &str) -> ! {
    let fail = |why: String| -> ! {
        console::error("root", why);
        shutdown::power_off("root", None)
    };
    let partuuid = parse_root(root).unwrap_or_else(|why| fail(why));
    let mut loader = Loader::for_running_kernel();
    let list = std::fs::read_to_string(BOOT_MODULES_PATH).unwrap_or_default();
    for path in list.lines().filter(|l| !l.trim().is_empty()) {
        loader.load_listed(path.trim());
    }

    let spec = DataPartition {
        label: None,
        partuuid: Some(partuuid.clone()),
        fstype: "squashfs".into(),
        mountpoint: NEW_ROOT.into(),
    };
    let mut device = None;
    let mut root_found = || {
        device = data::find_device(&spec);
        device.is_some()
    };
    let coldplug = modules::coldplug::run(
        &mut loader,
        Path::new(modules::sysfs::SYS),
        Until::Found(&mut root_found),
        Instant::now() + ROOT_PATIENCE,
    );
    console::info(format!("boot coldplug: {coldplug}"));
    let Some(device) = device else {
        fail(format!(
            "no partition with PARTUUID {partuuid} after {}s (is the card in? does the boot initramfs carry its controller's driver and suppliers? `edgeimg inspect` lists them)",
            ROOT_PATIENCE.as_secs()
        ))
    };
    if let Err(error) = mounts::ensure_dir(NEW_ROOT) {
        fail(format!("cannot create {NEW_ROOT}: {error}"));
    }
    if let Err(errno) = mount(
        Some(&device),
        NEW_ROOT,
        Some("squashfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
        None::<&str>,
    ) {
        fail(format!(
            "mounting {} as squashfs failed: {errno} (is squashfs in {BOOT_MODULES_PATH}?)",
            device.display()
        ));
    }
    console::info(format!(
        "root {} mounted at {} ms",
        device.display(),
        readiness::ms_since_boot()
    ));
    for target in CARRIED_MOUNTS {
        let moved = format!("{NEW_ROOT}{target}");
        if let Err(errno) = mount(
            Some(target),
            moved.as_str(),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        ) {
            console::error("root", format!("cannot move {target} to {moved}: {errno}"));
        }
    }
    if let Err(errno) = enter(NEW_ROOT) {
        fail(format!("cannot make {NEW_ROOT} the root: {errno}"));
    }
    let init = CString::new(crate::INIT_IN_ROOT).expect("constant path");
    let errno = nix::unistd::execv(&init, &[&init]).unwrap_err();
    fail(format!("cannot start {}: {errno}", crate::INIT_IN_ROOT))
}

/// switch_root's core: the new root replaces `/` (the initramfs stays in memory unreferenced;
/// it holds only init and a few modules).
fn enter(new_root: &str) -> nix::Result<()> {
    nix::unistd::chdir(new_root)?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)?;
    nix::unistd::chroot(".")?;
    nix::unistd::chdir("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_must_be_a_partuuid() {
        assert_eq!(parse_root("PARTUUID=6C2A0F13-02").unwrap(), "6c2a0f13-02");
        let why = parse_root("/dev/mmcblk0p2").unwrap_err();
        assert!(why.contains("root=PARTUUID="), "{why}");
        assert!(parse_root("PARTUUID=").is_err());
    }
}
