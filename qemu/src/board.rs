//! Per-board QEMU machine profiles: which binary, machine, CPU, memory, console UART,
//! network card, disk interface and firmware each supported board boots with.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use edge_config::Arch;

use crate::error::{Error, Result};

/// A board QEMU can stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Board {
    /// x86_64 PC (`-M q35`); also used for the `pc-efi` recipe board.
    QemuX86_64,
    /// Generic arm64 machine (`-M virt -cpu cortex-a57`).
    QemuAarch64,
    /// Raspberry Pi 3 Model B (`-M raspi3b`): kernel + DTB boot, SD card, USB networking.
    Raspi3b,
    /// Raspberry Pi 4 Model B (`-M raspi4b`, QEMU 9.0 and later): kernel + DTB boot, SD card,
    /// no network (QEMU models neither genet nor the PCIe USB controller).
    Raspi4b,
}

impl Board {
    pub const ALL: [Board; 4] = [
        Board::QemuX86_64,
        Board::QemuAarch64,
        Board::Raspi3b,
        Board::Raspi4b,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Board::QemuX86_64 => "qemu-x86_64",
            Board::QemuAarch64 => "qemu-aarch64",
            Board::Raspi3b => "raspi3b",
            Board::Raspi4b => "raspi4b",
        }
    }

    /// The generic QEMU machine of `arch` (q35 or virt).
    pub fn generic(arch: Arch) -> Board {
        match arch {
            Arch::X86_64 => Board::QemuX86_64,
            Arch::Aarch64 => Board::QemuAarch64,
        }
    }

    pub fn arch(self) -> Arch {
        match self {
            Board::QemuX86_64 => Arch::X86_64,
            Board::QemuAarch64 | Board::Raspi3b | Board::Raspi4b => Arch::Aarch64,
        }
    }

    /// How QEMU runs this board.
    pub fn profile(self) -> MachineProfile {
        match self {
            // q35 over microvm: measured under TCG with Alpine's linux-virt bzImage + a small
            // initramfs, microvm was no faster (~11 s vs ~12 s to init on a loaded host) and its
            // virtio-net (virtio-mmio) never showed up as eth0; q35 also has an i8042 keyboard
            // (ctrl-alt-delete), an ACPI power button and OVMF disk boots.
            Board::QemuX86_64 => MachineProfile {
                board: self,
                machine: "q35",
                tcg_cpu: None,
                kvm_capable: true,
                memory_mb: 256,
                fixed_memory: false,
                console_serial_index: 0,
                kernel_console: "ttyS0",
                nic: Some(PCIE_NIC),
                disk_interface: DiskInterface::Virtio,
                uefi: Some(UefiFirmware {
                    code: PathBuf::from("/usr/share/OVMF/OVMF_CODE.fd"),
                    vars_template: PathBuf::from("/usr/share/OVMF/OVMF_VARS.fd"),
                    package: "ovmf",
                }),
                poweroff_only_halts: false,
                keyboard: None,
            },
            // cortex-a57 over `max`: `max` emulates pointer authentication, which is slow
            // under TCG, and the images target ARMv8.0 anyway.
            Board::QemuAarch64 => MachineProfile {
                board: self,
                machine: "virt",
                tcg_cpu: Some("cortex-a57"),
                kvm_capable: true,
                memory_mb: 256,
                fixed_memory: false,
                console_serial_index: 0,
                kernel_console: "ttyAMA0",
                nic: Some(PCIE_NIC),
                disk_interface: DiskInterface::Virtio,
                uefi: Some(UefiFirmware {
                    code: PathBuf::from("/usr/share/AAVMF/AAVMF_CODE.fd"),
                    vars_template: PathBuf::from("/usr/share/AAVMF/AAVMF_VARS.fd"),
                    package: "qemu-efi-aarch64",
                }),
                poweroff_only_halts: false,
                keyboard: None,
            },
            // The Pi 3's Linux console is the mini UART (DT alias serial1 -> ttyS1), which QEMU
            // wires to its second -serial; the PL011 (first -serial) belongs to Bluetooth.
            // Networking is USB-only on this machine: QEMU's usb-net on the dwc2 controller
            // (the guest needs dwc2 + cdc_ether).
            Board::Raspi3b => MachineProfile {
                board: self,
                machine: "raspi3b",
                tcg_cpu: None,
                kvm_capable: false,
                memory_mb: 1024,
                fixed_memory: true,
                console_serial_index: 1,
                kernel_console: "ttyS1,115200",
                nic: Some("usb-net"),
                disk_interface: DiskInterface::Sd,
                uefi: None,
                poweroff_only_halts: true,
                keyboard: Some("usb-kbd"),
            },
            // The Pi 4's Linux console is the PL011 (ttyAMA0), QEMU's first -serial. QEMU has
            // no genet and no PCIe (so no xHCI): no network. Its dwc2 takes the USB keyboard
            // that asks for a power-off, as on raspi3b.
            Board::Raspi4b => MachineProfile {
                board: self,
                machine: "raspi4b",
                tcg_cpu: None,
                kvm_capable: false,
                memory_mb: 2048,
                fixed_memory: true,
                console_serial_index: 0,
                kernel_console: "ttyAMA0,115200",
                nic: None,
                disk_interface: DiskInterface::Sd,
                uefi: None,
                poweroff_only_halts: true,
                keyboard: Some("usb-kbd"),
            },
        }
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Board {
    type Err = Error;

    /// Accepts the harness names and the recipe board names that QEMU can emulate.
    fn from_str(name: &str) -> Result<Board> {
        match name {
            "qemu-x86_64" | "pc-efi" => Ok(Board::QemuX86_64),
            "qemu-aarch64" => Ok(Board::QemuAarch64),
            "raspi3b" | "rpi3" => Ok(Board::Raspi3b),
            "raspi4b" | "rpi4" => Ok(Board::Raspi4b),
            other => Err(Error::BadSpec(format!(
                "unknown board `{other}`; QEMU can boot: qemu-x86_64, pc-efi, qemu-aarch64, rpi3 (raspi3b), rpi4 (raspi4b)"
            ))),
        }
    }
}

/// How a disk image is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskInterface {
    /// `-drive if=virtio` (virtio-blk, `/dev/vdX` in the guest).
    Virtio,
    /// `-drive if=sd` (the board's SD card slot, `/dev/mmcblk0`); one disk only.
    Sd,
}

/// UEFI firmware for disk boots: read-only code plus a template for the writable variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UefiFirmware {
    pub code: PathBuf,
    pub vars_template: PathBuf,
    /// The Debian package that provides both files.
    pub package: &'static str,
}

/// The network card of the PCIe boards (q35, virt): hot-pluggable into a PCIe slot.
pub(crate) const PCIE_NIC: &str = "virtio-net-pci";

/// Everything the harness needs to know to run one board in QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineProfile {
    pub board: Board,
    /// `-M` value.
    pub machine: &'static str,
    /// `-cpu` value under TCG (`None`: QEMU's default); KVM always uses `-cpu host`.
    pub tcg_cpu: Option<&'static str>,
    /// QEMU can run this machine under KVM (on a host of the same architecture).
    pub kvm_capable: bool,
    /// Default guest memory.
    pub memory_mb: u32,
    /// The machine only accepts `memory_mb` (raspi3b is always 1 GiB).
    pub fixed_memory: bool,
    /// Which `-serial` (0-based) is the console the kernel prints on.
    pub console_serial_index: usize,
    /// `console=` value the kernel needs to print on that UART.
    pub kernel_console: &'static str,
    /// Network card model for `-device`, if the board can have user networking.
    pub nic: Option<&'static str>,
    pub disk_interface: DiskInterface,
    /// Firmware used when booting a disk without `-kernel`.
    pub uefi: Option<UefiFirmware>,
    /// Guest power-off only halts the CPU, so the harness must end QEMU itself.
    pub poweroff_only_halts: bool,
    /// A USB keyboard for boards without a power button: ctrl-alt-del is then how the harness
    /// asks the guest to power off.
    pub keyboard: Option<&'static str>,
}

impl MachineProfile {
    pub fn arch(&self) -> Arch {
        self.board.arch()
    }
}
