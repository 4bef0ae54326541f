//! What to boot ([`BootSpec`]) and how to run it ([`SpawnOptions`]).

use std::path::{Path, PathBuf};

use crate::accel::Accel;
use crate::board::{Board, DiskInterface, MachineProfile, PCIE_NIC};
use crate::error::{Error, Result};

/// Disk image format, as QEMU's `format=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

impl DiskFormat {
    pub fn as_qemu(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }

    /// Guess from the file name: `.qcow2` is qcow2, anything else raw.
    pub fn from_path(path: &Path) -> DiskFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("qcow2") => DiskFormat::Qcow2,
            _ => DiskFormat::Raw,
        }
    }
}

/// A disk attached to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub format: DiskFormat,
    /// Guest writes go to a temporary overlay and the image file stays unchanged.
    pub snapshot: bool,
}

impl Disk {
    /// A disk whose format is guessed from its name, written through to the file.
    pub fn new(path: impl Into<PathBuf>) -> Disk {
        let path = path.into();
        Disk {
            format: DiskFormat::from_path(&path),
            path,
            snapshot: false,
        }
    }

    /// Keep the image file unchanged (`snapshot=on`).
    pub fn snapshot(mut self) -> Disk {
        self.snapshot = true;
        self
    }
}

/// The guest's network card (QEMU's user network, `forward_port` forwarded), on boards with one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Nic {
    /// Present from power-on, its link up.
    #[default]
    Plugged,
    /// None at boot: an empty PCIe slot that [`RunningVm::plug_nic`](crate::RunningVm::plug_nic)
    /// fills later, as when a card is hot-plugged (PCIe boards only: q35, virt).
    EmptySlot,
}

/// What to boot. Either a kernel (direct kernel boot; disks are extra) or, without a kernel,
/// the first disk through UEFI firmware. On raspi3b the (single) disk is the SD card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSpec {
    pub board: Board,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub dtb: Option<PathBuf>,
    /// Kernel command line; `console=` for the board's console UART is added when missing.
    pub append: String,
    pub disks: Vec<Disk>,
    /// Guest memory; `None` takes the board's default.
    pub memory_mb: Option<u32>,
    pub cpus: u32,
    /// Guest TCP port (e.g. the API on 8000) to forward to a free port on 127.0.0.1.
    pub forward_port: Option<u16>,
    pub nic: Nic,
}

impl BootSpec {
    /// A direct kernel boot with the board's defaults and nothing else attached.
    pub fn kernel(board: Board, kernel: impl Into<PathBuf>) -> BootSpec {
        BootSpec {
            board,
            kernel: Some(kernel.into()),
            initrd: None,
            dtb: None,
            append: String::new(),
            disks: Vec::new(),
            memory_mb: None,
            cpus: 1,
            forward_port: None,
            nic: Nic::Plugged,
        }
    }

    /// A firmware (UEFI) boot of a disk image with the board's defaults.
    pub fn disk(board: Board, disk: Disk) -> BootSpec {
        BootSpec {
            kernel: None,
            disks: vec![disk],
            ..BootSpec::kernel(board, PathBuf::new())
        }
    }

    /// Check the spec against the board and that every file exists.
    pub fn validate(&self, profile: &MachineProfile) -> Result<()> {
        let bad = |msg: String| Err(Error::BadSpec(msg));
        let board = self.board;
        for (what, path) in [
            ("kernel", &self.kernel),
            ("initrd", &self.initrd),
            ("dtb", &self.dtb),
        ] {
            if let Some(path) = path {
                require_file(what, path)?;
            }
        }
        for disk in &self.disks {
            require_file("disk image", &disk.path)?;
        }
        if self.kernel.is_none() {
            if self.initrd.is_some() || self.dtb.is_some() {
                return bad("an initrd or dtb needs a kernel (set `kernel`)".into());
            }
            if self.disks.is_empty() {
                return bad("nothing to boot: give a kernel or a disk image".into());
            }
            if profile.uefi.is_none() {
                return bad(format!(
                    "{board} cannot boot a disk by itself in QEMU (QEMU does not run the Pi's \
                     boot firmware); give the kernel, initrd and dtb from the image"
                ));
            }
        }
        if profile.disk_interface == DiskInterface::Sd && self.disks.len() > 1 {
            return bad(format!(
                "{board} has one SD card slot but {} disks were given",
                self.disks.len()
            ));
        }
        if let (true, Some(mb)) = (profile.fixed_memory, self.memory_mb) {
            if mb != profile.memory_mb {
                return bad(format!(
                    "{board} always has {} MiB of memory; drop memory_mb={mb}",
                    profile.memory_mb
                ));
            }
        }
        if self.forward_port.is_some() && profile.nic.is_none() {
            return bad(format!(
                "{board} has no network QEMU can forward a port to; unset forward_port or boot \
                 on a board with one (qemu-aarch64, raspi3b)"
            ));
        }
        if self.nic == Nic::EmptySlot && profile.nic != Some(PCIE_NIC) {
            return bad(format!(
                "{board} has no PCIe slot to plug a network card into later; boot with \
                 nic = Nic::Plugged or on qemu-x86_64 / qemu-aarch64"
            ));
        }
        if self.cpus == 0 {
            return bad("cpus must be at least 1".into());
        }
        Ok(())
    }
}

fn require_file(what: &str, path: &Path) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::BadSpec(format!(
            "{what} {} does not exist or is not a file; build the image first or fix the path",
            path.display()
        )))
    }
}

/// Where the serial console goes besides the log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsoleMode {
    /// Log file only (tests, CI).
    #[default]
    Headless,
    /// Log file, and echo the console to this process's stdout.
    Tee,
    /// The terminal is the console (stdin goes to the guest; Ctrl-a x quits QEMU,
    /// Ctrl-a c toggles the QEMU monitor); still logged and watched for readiness.
    Interactive,
}

/// How the harness runs QEMU.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    pub console: ConsoleMode,
    /// Console log file; default: `console.log` in the VM's temporary directory.
    pub console_log: Option<PathBuf>,
    /// Accelerator; default: `EDGEIMG_ACCEL`, else KVM when the probe passes, else TCG.
    pub accel: Option<Accel>,
    /// The host port for the guest's API; default: any free one. A relaunch after a guest
    /// reboot passes the last one, so the address a user was given keeps working.
    pub api_port: Option<u16>,
}
