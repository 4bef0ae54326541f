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

/// Everything a board decides by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardProfile {
    pub arch: Arch,
    pub kernel_package: &'static str,
    /// Packages the board needs besides the kernel (boot firmware, ...).
    pub firmware_packages: &'static [&'static str],
    /// Kernel console argument(s).
    pub console: &'static str,
    /// Modules the board always loads (beyond the recipe's extra modules).
    pub modules: &'static [&'static str],
    /// Boots from an SD card/disk image rather than kernel + initramfs given directly.
    pub disk_boot: bool,
    /// On disk boots, what the boot initramfs loads to reach the root partition (with their
    /// dependencies); all of them are also in `modules`.
    pub root_modules: &'static [&'static str],
}

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
                // SD card (sdhci-iproc: the Pi 4's emmc2; bcm2835: the Pi 3's sdhost), root
                // and data file systems, boot partition, and Ethernet: genet on the Pi 4,
                // smsc95xx/lan78xx on USB (dwc2) on the Pi 3 family.
                modules: &[
                    "sdhci-iproc",
                    "bcm2835",
                    "squashfs",
                    "ext4",
                    // ext4's metadata checksums on 6.1 kernels go through the crypto API
                    // (a modules.softdep, which the module closure does not follow).
                    "crc32c_generic",
                    "vfat",
                    "genet",
                    "smsc95xx",
                    "lan78xx",
                    "dwc2",
                    // The USB PHY dwc2 waits for (else it probes ~10 s late, deferred).
                    "phy-generic",
                    // USB CDC Ethernet: gadgets and QEMU raspi3b's usb-net, the test network.
                    "cdc_ether",
                    // A USB keyboard's ctrl-alt-del powers off (QEMU raspi3b's only way).
                    "usbhid",
                    "hid_generic",
                ],
                disk_boot: true,
                root_modules: &["sdhci-iproc", "bcm2835", "squashfs"],
            },
            Board::QemuX86_64 => BoardProfile {
                arch: Arch::X86_64,
                kernel_package: "linux-virt",
                firmware_packages: &[],
                console: "console=ttyS0",
                // button + evdev: QEMU's power button (ACPI) reaches init as KEY_POWER.
                modules: &["virtio_net", "virtio_blk", "button", "evdev"],
                disk_boot: false,
                root_modules: &["virtio_blk", "squashfs"],
            },
            Board::QemuAarch64 => BoardProfile {
                arch: Arch::Aarch64,
                kernel_package: "linux-virt",
                firmware_packages: &[],
                console: "console=ttyAMA0",
                // QEMU's power button: gpio-pl061 for the device-tree GPIO key init watches
                // (linux-virt has no gpio_keys), button + evdev when booted through UEFI/ACPI.
                modules: &["virtio_net", "virtio_blk", "gpio-pl061", "button", "evdev"],
                disk_boot: false,
                root_modules: &["virtio_blk", "squashfs"],
            },
        }
    }
}

impl std::fmt::Display for Board {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
