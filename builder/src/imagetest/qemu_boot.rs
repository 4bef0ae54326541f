//! From a built image to a QEMU boot: which emulated machines stand in for the recipe's board,
//! and the boot spec from the manifest's boot record (a Pi card: from the card itself).

use std::path::Path;

use anyhow::{Context, Result};
use edgeimg_qemu::{Board as QemuBoard, BootSpec, Disk};

use super::emulated_dtb::{emulation_copy, machine_device_tree};
use crate::image::disk::{read_boot_file, DiskRecord};
use crate::outputs::manifest::Manifest;
use crate::recipe::Board;
use crate::writers::disk::copy_sparse;

/// The guest port the API is forwarded from.
pub const API_PORT: u16 = 8000;

/// The machines that boot a board's image, the board's own first. A Pi 4 card also boots as
/// a Pi 3: raspi4b has no network, raspi3b's USB network runs the API checks.
pub fn qemu_boards(board: Board) -> &'static [QemuBoard] {
    match board {
        Board::QemuX86_64 => &[QemuBoard::QemuX86_64],
        Board::QemuAarch64 => &[QemuBoard::QemuAarch64],
        Board::Rpi4 => &[QemuBoard::Raspi4b, QemuBoard::Raspi3b],
        Board::Rpi3 => &[QemuBoard::Raspi3b],
    }
}

/// The machine that stands in for the board itself.
pub fn qemu_board(board: Board) -> QemuBoard {
    qemu_boards(board)[0]
}

/// Boot spec for a built image on `machine`; `extra_cmdline` is appended (e.g. a self-test
/// request).
pub fn boot_spec(
    board: Board,
    machine: QemuBoard,
    out_dir: &Path,
    manifest: &Manifest,
    extra_cmdline: &str,
) -> Result<BootSpec> {
    if board.profile().disk_boot {
        return sd_card_spec(machine, out_dir, manifest, extra_cmdline);
    }
    if manifest.boot.is_none() {
        if let Some(disk) = manifest.disk.as_ref().filter(|d| d.kernel.is_some()) {
            return disk_spec(machine, out_dir, disk, extra_cmdline);
        }
    }
    let boot = manifest.boot.as_ref().with_context(|| {
        format!(
            "{} has no direct-boot kernel/initramfs nor disk image; add \"initramfs\" or \"disk\" to image.outputs",
            manifest.name
        )
    })?;
    let mut spec = BootSpec::kernel(machine, out_dir.join(&boot.kernel));
    spec.initrd = boot.initrd.as_ref().map(|f| out_dir.join(f));
    spec.dtb = boot.dtb.as_ref().map(|f| out_dir.join(f));
    spec.append = format!("{} {extra_cmdline}", boot.cmdline)
        .trim()
        .to_string();
    if let Some(built) = &boot.data_disk {
        spec.disks
            .push(Disk::new(working_copy(&out_dir.join(built), out_dir)?));
    }
    spec.forward_port = Some(API_PORT);
    Ok(spec)
}

/// The disk QEMU writes: a sparse copy of the built one in `OUT/qemu/`, kept from boot to boot
/// (what the device stored survives a reboot, as on a board) and made afresh when the build
/// is newer, as flashing a card would. [`reset_working_copies`] starts a test from the build.
fn working_copy(built: &Path, out_dir: &Path) -> Result<std::path::PathBuf> {
    let name = built.file_name().context("a disk image has a file name")?;
    let copy = out_dir.join("qemu").join(name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&copy).is_none() || modified(&copy) < modified(built) {
        std::fs::create_dir_all(out_dir.join("qemu"))
            .with_context(|| format!("cannot create {}/qemu", out_dir.display()))?;
        let src = std::fs::File::open(built)
            .with_context(|| format!("cannot open {}", built.display()))?;
        let mut dst = std::fs::File::create(&copy)
            .with_context(|| format!("cannot create {}", copy.display()))?;
        copy_sparse(&src, &mut dst, 0)?;
        dst.set_len(src.metadata()?.len())?;
    }
    Ok(copy)
}

/// Forgets what earlier boots stored on the disks: the next boot starts from the built ones.
pub fn reset_working_copies(manifest: &Manifest, out_dir: &Path) -> Result<()> {
    let disks = [
        manifest.boot.as_ref().and_then(|b| b.data_disk.as_ref()),
        manifest.disk.as_ref().map(|d| &d.image),
    ];
    for name in disks.into_iter().flatten() {
        let copy = out_dir.join("qemu").join(name);
        match std::fs::remove_file(&copy) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", copy.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A QEMU board's disk image: the kernel and boot initramfs go in directly, the root is the
/// disk's squashfs partition (found by PARTUUID). Guest writes go to a working copy, as the
/// data disk's do.
fn disk_spec(
    machine: QemuBoard,
    out_dir: &Path,
    disk: &DiskRecord,
    extra: &str,
) -> Result<BootSpec> {
    let kernel = disk.kernel.as_ref().expect("checked by the caller");
    let mut spec = BootSpec::kernel(machine, out_dir.join(kernel));
    spec.initrd = disk.initramfs.as_ref().map(|f| out_dir.join(f));
    spec.append = format!("{} {extra}", disk.cmdline).trim().to_string();
    spec.disks.push(Disk::new(working_copy(
        &out_dir.join(&disk.image),
        out_dir,
    )?));
    spec.forward_port = Some(API_PORT);
    Ok(spec)
}

/// A Pi image boots on QEMU's raspi3b/raspi4b from the card itself: QEMU has no Pi firmware,
/// so the kernel, initramfs, device tree and command line come from the card's boot
/// partition, and the root is read from the card through the guest's mmc driver. The device
/// tree is the machine's own, with the emulation-only edits of [`emulated_dtb`] on a copy.
fn sd_card_spec(
    machine: QemuBoard,
    out_dir: &Path,
    manifest: &Manifest,
    extra_cmdline: &str,
) -> Result<BootSpec> {
    let disk = manifest.disk.as_ref().with_context(|| {
        format!(
            "{} has no disk image to boot; add \"disk\" to image.outputs",
            manifest.name
        )
    })?;
    let files = disk
        .boot_files
        .as_ref()
        .with_context(|| format!("{} has no boot partition", disk.image))?;
    let image = out_dir.join(&disk.image);
    let scratch = out_dir.join("qemu");
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let extract = |name: &str| -> Result<std::path::PathBuf> {
        let dest = scratch.join(name);
        std::fs::write(&dest, read_boot_file(&image, disk, name)?)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(dest)
    };
    let (dtb, edits) = machine_device_tree(machine)
        .with_context(|| format!("{machine} does not boot a Raspberry Pi card"))?;
    let mut spec = BootSpec::kernel(machine, extract(&files.kernel)?);
    spec.initrd = Some(extract(&files.initramfs)?);
    let card_dtb = read_boot_file(&image, disk, dtb)?;
    let emulated = scratch.join(format!("{machine}.dtb"));
    std::fs::write(&emulated, emulation_copy(dtb, &card_dtb, edits)?)
        .with_context(|| format!("cannot write {}", emulated.display()))?;
    spec.dtb = Some(emulated);
    let cmdline =
        String::from_utf8_lossy(&read_boot_file(&image, disk, &files.cmdline)?).into_owned();
    // `serial0`/`tty1` are names the Pi firmware rewrites; the harness names QEMU's UART.
    spec.append = cmdline
        .split_whitespace()
        .filter(|w| !w.starts_with("console="))
        .chain(extra_cmdline.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ");
    let card = scratch.join("sd.img");
    copy_to_sd_card(&image, &card)?;
    spec.disks.push(Disk::new(card));
    spec.forward_port = machine.profile().nic.map(|_| API_PORT);
    Ok(spec)
}

/// QEMU's SD card model takes only power-of-two sizes: a sparse copy, padded.
fn copy_to_sd_card(image: &Path, card: &Path) -> Result<()> {
    let src =
        std::fs::File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
    let len = src.metadata()?.len();
    let mut dst =
        std::fs::File::create(card).with_context(|| format!("cannot create {}", card.display()))?;
    copy_sparse(&src, &mut dst, 0)?;
    dst.set_len(len.next_power_of_two())?;
    Ok(())
}
