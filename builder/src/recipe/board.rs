//! Board profiles: what a board implies (arch, kernel, firmware, console, image layout), so a
//! recipe only states what differs.

use edge_config::Arch;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Board {
    Rpi4,
    Rpi3,
    #[serde(rename = "qemu-x86_64")]
    QemuX86_64,
    QemuAarch64,
}

/// A module a board ships, and why (shown by `edgeimg inspect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardModule {
    pub name: &'static str,
    pub why: &'static str,
}

const fn module(name: &'static str, why: &'static str) -> BoardModule {
    BoardModule { name, why }
}

/// Everything a board decides by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardProfile {
    pub arch: Arch,
    pub kernel_package: &'static str,
    /// Packages the board needs besides the kernel (boot firmware, ...).
    pub firmware_packages: &'static [&'static str],
    /// Kernel console argument(s).
    pub console: &'static str,
    /// Device trees (file names the kernel package puts under /boot) whose nodes decide the
    /// drivers: those on the way to the root device go into the boot initramfs, those on the
    /// way to the network into the root.
    pub device_trees: &'static [&'static str],
    /// Drivers for devices no device tree names, shipped in the root and loaded when their
    /// device shows up.
    pub device_modules: &'static [BoardModule],
    /// On disk boots, drivers for the root device that no device tree names (the boot
    /// initramfs carries them).
    pub root_device_modules: &'static [BoardModule],
    /// Boots from an SD card/disk image rather than kernel + initramfs given directly.
    pub disk_boot: bool,
}

/// The Pi boards' card carries both firmwares and every device tree: one card boots a Pi 3
/// and a Pi 4 (the tests boot it as both).
const PI_DEVICE_TREES: &[&str] = &[
    "bcm2711-rpi-4-b.dtb",
    "bcm2837-rpi-3-b.dtb",
    "bcm2837-rpi-3-b-plus.dtb",
];

const PI_DEVICE_MODULES: &[BoardModule] = &[
    module(
        "broadcom",
        "the Pi 4's Ethernet PHY (BCM54213PE): the device tree names no PHY driver, the MDIO bus reads the PHY's id",
    ),
    module(
        "bcm2835_wdt",
        "power-off: the PM block's watchdog is the Pi's system-power-controller",
    ),
    module(
        "cdc_ether",
        "USB CDC Ethernet: gadgets, and the usb-net of QEMU's raspi3b (the test network)",
    ),
    module(
        "usbhid",
        "a USB keyboard: ctrl-alt-del powers off (how the QEMU harness asks on raspi3b/raspi4b)",
    ),
    module("hid_generic", "a USB keyboard (with usbhid)"),
];

const QEMU_ROOT_DEVICE: &[BoardModule] = &[module("virtio_blk", "QEMU's virtio disk")];

const QEMU_X86_64_DEVICES: &[BoardModule] = &[
    module("virtio_net", "QEMU's virtio network card"),
    module("virtio_blk", "QEMU's virtio disks"),
    module("button", "QEMU's ACPI power button"),
    EVDEV,
];

/// linux-virt has no gpio_keys: init watches the power line through the PL061.
const QEMU_AARCH64_DEVICES: &[BoardModule] = &[
    module("virtio_net", "QEMU's virtio network card"),
    module("virtio_blk", "QEMU's virtio disks"),
    module(
        "gpio-pl061",
        "the GPIO controller of QEMU's device-tree power key",
    ),
    module("button", "QEMU's ACPI power button (UEFI boots)"),
    EVDEV,
];

/// Its alias matches every input device, so it loads once one appears (the ACPI button does on
/// q35 and on UEFI boots) and not at all on a direct-boot virt, which has none.
const EVDEV: BoardModule = module(
    "evdev",
    "input events: init watches the power button's KEY_POWER",
);

impl Board {
    pub const ALL: [Board; 4] = [
        Board::Rpi4,
        Board::Rpi3,
        Board::QemuX86_64,
        Board::QemuAarch64,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Board::Rpi4 => "rpi4",
            Board::Rpi3 => "rpi3",
            Board::QemuX86_64 => "qemu-x86_64",
            Board::QemuAarch64 => "qemu-aarch64",
        }
    }

    pub fn profile(self) -> BoardProfile {
        match self {
            Board::Rpi4 | Board::Rpi3 => BoardProfile {
                arch: Arch::Aarch64,
                kernel_package: "linux-rpi",
                firmware_packages: &["raspberrypi-bootloader"],
                console: "console=serial0,115200 console=tty1",
                device_trees: PI_DEVICE_TREES,
                device_modules: PI_DEVICE_MODULES,
                root_device_modules: &[],
                disk_boot: true,
            },
            Board::QemuX86_64 => BoardProfile {
                arch: Arch::X86_64,
                kernel_package: "linux-virt",
                firmware_packages: &[],
                console: "console=ttyS0",
                device_trees: &[],
                device_modules: QEMU_X86_64_DEVICES,
                root_device_modules: QEMU_ROOT_DEVICE,
                disk_boot: false,
            },
            Board::QemuAarch64 => BoardProfile {
                arch: Arch::Aarch64,
                kernel_package: "linux-virt",
                firmware_packages: &[],
                console: "console=ttyAMA0",
                device_trees: &[],
                device_modules: QEMU_AARCH64_DEVICES,
                root_device_modules: QEMU_ROOT_DEVICE,
                disk_boot: false,
            },
        }
    }
}

impl std::fmt::Display for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
