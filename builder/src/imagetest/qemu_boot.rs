//! From a built image to a QEMU boot: which emulated machines stand in for the recipe's board,
//! and the boot spec from the manifest's boot record (a Pi card: from the card itself).

use std::path::Path;

use anyhow::{Context, Result};
use edgeimg_qemu::{Board as QemuBoard, BootSpec, Disk};

use super::emulated_dtb::{emulation_copy, machine_device_tree};
use crate::image::disk::{booted_slot_prefix, read_boot_file, DiskRecord};
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
        if let Some(disk) = &manifest.disk {
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
        spec.disks.push(Disk::new(working_copy(
            &out_dir.join(built),
            out_dir,
            false,
        )?));
    }
    spec.forward_port = Some(API_PORT);
    Ok(spec)
}

/// The disk QEMU writes: a sparse copy of the built one in `OUT/qemu/`, kept from boot to boot
/// (what the device stored survives a reboot, as on a board) and made afresh when the build
/// is newer, as flashing a card would. [`reset_working_copies`] starts a test from the build.
/// QEMU's SD card model takes only power-of-two sizes: `sd_card` pads the copy so.
fn working_copy(built: &Path, out_dir: &Path, sd_card: bool) -> Result<std::path::PathBuf> {
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
        let len = src.metadata()?.len();
        dst.set_len(if sd_card {
            len.next_power_of_two()
        } else {
            len
        })?;
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

/// What the firmware would load from a disk image's boot partition: the slot folder its
/// `config.txt` names (`os_prefix=b/`), read afresh at every boot, as the Pi firmware does.
/// On the QEMU boards no firmware does so; the harness does it in its place.
struct SlotFiles<'a> {
    disk: &'a DiskRecord,
    image: std::path::PathBuf,
    prefix: String,
    scratch: std::path::PathBuf,
}

impl SlotFiles<'_> {
    fn open<'a>(
        disk: &'a DiskRecord,
        image: std::path::PathBuf,
        out_dir: &Path,
    ) -> Result<SlotFiles<'a>> {
        let prefix = booted_slot_prefix(&image, disk)?;
        let scratch = out_dir.join("qemu");
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        Ok(SlotFiles {
            disk,
            image,
            prefix,
            scratch,
        })
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        read_boot_file(&self.image, self.disk, &format!("{}{name}", self.prefix))
    }

    /// The file copied out for QEMU's `-kernel`, `-initrd`.
    fn extract(&self, name: &str) -> Result<std::path::PathBuf> {
        let dest = self.scratch.join(name);
        std::fs::write(&dest, self.read(name)?)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(dest)
    }

    fn cmdline(&self) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read(&self.disk.boot_files.cmdline)?).into_owned())
    }
}

/// A QEMU board's disk image: the kernel, boot initramfs and command line come from the slot
/// folder the boot partition names ([`SlotFiles`]); the root is that slot's squashfs
/// partition (found by PARTUUID). Guest writes go to a working copy, as the data disk's do.
fn disk_spec(
    machine: QemuBoard,
    out_dir: &Path,
    disk: &DiskRecord,
    extra: &str,
) -> Result<BootSpec> {
    let image = working_copy(&out_dir.join(&disk.image), out_dir, false)?;
    let slot = SlotFiles::open(disk, image.clone(), out_dir)?;
    let mut spec = BootSpec::kernel(machine, slot.extract(&disk.boot_files.kernel)?);
    spec.initrd = Some(slot.extract(&disk.boot_files.initramfs)?);
    spec.append = format!("{} {extra}", slot.cmdline()?.trim())
        .trim()
        .to_string();
    spec.disks.push(Disk::new(image));
    spec.forward_port = Some(API_PORT);
    Ok(spec)
}

/// A Pi image boots on QEMU's raspi3b/raspi4b from the card itself: QEMU has no Pi firmware,
/// so the kernel, initramfs, device tree and command line come from the slot folder of the
/// card's boot partition that its `config.txt` names ([`SlotFiles`]), and the root is read
/// from the card through the guest's mmc driver. The device tree is the machine's own, with
/// the emulation-only edits of [`emulated_dtb`] on a copy.
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
    let card = working_copy(&out_dir.join(&disk.image), out_dir, true)?;
    let slot = SlotFiles::open(disk, card.clone(), out_dir)?;
    let (dtb, edits) = machine_device_tree(machine)
        .with_context(|| format!("{machine} does not boot a Raspberry Pi card"))?;
    let mut spec = BootSpec::kernel(machine, slot.extract(&disk.boot_files.kernel)?);
    spec.initrd = Some(slot.extract(&disk.boot_files.initramfs)?);
    let emulated = slot.scratch.join(format!("{machine}.dtb"));
    std::fs::write(&emulated, emulation_copy(dtb, &slot.read(dtb)?, edits)?)
        .with_context(|| format!("cannot write {}", emulated.display()))?;
    spec.dtb = Some(emulated);
    // `serial0`/`tty1` are names the Pi firmware rewrites; the harness names QEMU's UART.
    spec.append = slot
        .cmdline()?
        .split_whitespace()
        .filter(|w| !w.starts_with("console="))
        .chain(extra_cmdline.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ");
    spec.disks.push(Disk::new(card));
    spec.forward_port = machine.profile().nic.map(|_| API_PORT);
    Ok(spec)
}
