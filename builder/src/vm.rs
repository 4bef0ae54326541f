//! From a built image to a QEMU boot: which emulated board stands in for the recipe's board,
//! and the boot spec from the manifest's boot record.

use std::path::Path;

use anyhow::{Context, Result};
use edgeimg_qemu::{Board as QemuBoard, BootSpec};

use crate::manifest::Manifest;
use crate::recipe::Board;

/// The guest port the API is forwarded from.
pub const API_PORT: u16 = 8000;

pub fn qemu_board(board: Board) -> QemuBoard {
    match board {
        Board::QemuX86_64 => QemuBoard::QemuX86_64,
        Board::QemuAarch64 => QemuBoard::QemuAarch64,
        // QEMU 7.2 has no raspi4b; the Pi 3 machine runs the same arm64 image.
        Board::Rpi4 | Board::Rpi3 => QemuBoard::Raspi3b,
    }
}

/// Boot spec for a built image; `extra_cmdline` is appended (e.g. a self-test request).
pub fn boot_spec(
    board: Board,
    out_dir: &Path,
    manifest: &Manifest,
    extra_cmdline: &str,
) -> Result<BootSpec> {
    let boot = manifest.boot.as_ref().with_context(|| {
        format!(
            "{} has no direct-boot kernel/initramfs; add \"initramfs\" to image.outputs",
            manifest.name
        )
    })?;
    let mut spec = BootSpec::kernel(qemu_board(board), out_dir.join(&boot.kernel));
    spec.initrd = boot.initrd.as_ref().map(|f| out_dir.join(f));
    spec.dtb = boot.dtb.as_ref().map(|f| out_dir.join(f));
    spec.append = format!("{} {extra_cmdline}", boot.cmdline)
        .trim()
        .to_string();
    spec.forward_port = Some(API_PORT);
    Ok(spec)
}
