//! The boot floor: an image's own kernel, on the same QEMU machine, reaching a static init in
//! an initramfs holding nothing else. What an image adds to boot-to-ready beyond this is the
//! image's doing; below it nothing in the image can go.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use edgeimg_qemu::{Board as QemuBoard, BootSpec, Qemu, SpawnOptions};
use serde::Serialize;

use super::boot::TARGET_BOOTS;
use super::stats::median_ms;
use crate::image::device::edge_init;
use crate::image::disk::initramfs_skeleton;
use crate::outputs::manifest::Manifest;
use crate::plan::Plan;
use crate::rootfs::{Meta, RootPath};
use crate::writers::compression::Compression;
use crate::writers::cpio::write_cpio;

pub const MEASURES: &str = "the image's kernel and command line on the same QEMU machine, booting \
    an initramfs that holds only the static edge-init (no config, so it stops right after \
    starting); guest ms: init's own `started at` figure, from kernel start, the median of three \
    boots (each listed).";

/// What edge-init prints first, with milliseconds since kernel start.
const STARTED: &str = "edge-init: started at ";

#[derive(Debug, Clone, Serialize)]
pub struct FloorFigures {
    pub recipe: String,
    pub qemu_machine: String,
    pub arch: String,
    pub accel: String,
    /// The median of `guest_init_ms_each`.
    pub guest_init_ms: u64,
    pub guest_init_ms_each: Vec<u64>,
    pub initramfs_bytes: u64,
}

/// Boot `plan`'s kernel (from its direct-boot outputs) into the bare initramfs, [`TARGET_BOOTS`]
/// times.
pub fn measure(
    plan: &Plan,
    manifest: &Manifest,
    machine: QemuBoard,
    scratch: &Path,
    timeout: Duration,
) -> Result<FloorFigures> {
    let floor = FloorBoot::prepare(plan, manifest, machine, scratch)?;
    let mut each = Vec::new();
    let mut accel = String::new();
    for _ in 0..TARGET_BOOTS {
        let (ms, used) = floor.boot_once(timeout)?;
        each.push(ms);
        accel = used;
    }
    Ok(FloorFigures {
        recipe: plan.name.clone(),
        qemu_machine: machine.profile().machine.to_string(),
        arch: machine.arch().to_string(),
        accel,
        guest_init_ms: median_ms(&each),
        guest_init_ms_each: each,
        initramfs_bytes: std::fs::metadata(&floor.initramfs)?.len(),
    })
}

/// An image's kernel and command line on one QEMU machine, with the bare initramfs written.
pub struct FloorBoot {
    spec: BootSpec,
    initramfs: PathBuf,
    console_log: PathBuf,
}

impl FloorBoot {
    pub fn prepare(
        plan: &Plan,
        manifest: &Manifest,
        machine: QemuBoard,
        scratch: &Path,
    ) -> Result<FloorBoot> {
        let Some(boot) = &manifest.boot else {
            bail!(
                "{} has no kernel + initramfs outputs to take the kernel from",
                plan.name
            );
        };
        let initramfs = scratch.join(format!("{}-floor.cpio.zst", plan.name));
        write_bare_initramfs(&edge_init(plan.arch)?, plan.source_date_epoch, &initramfs)?;
        let mut spec = BootSpec::kernel(machine, plan.out_dir.join(&boot.kernel));
        spec.initrd = Some(initramfs.clone());
        spec.append = boot.cmdline.clone();
        Ok(FloorBoot {
            spec,
            initramfs,
            console_log: scratch.join(format!("{}-floor.console.log", plan.name)),
        })
    }

    /// One boot to the bare init: its start in guest ms, and the accelerator QEMU used.
    pub fn boot_once(&self, timeout: Duration) -> Result<(u64, String)> {
        let mut vm = Qemu::spawn(
            &self.spec,
            &SpawnOptions {
                console_log: Some(self.console_log.clone()),
                ..Default::default()
            },
        )?;
        let line = vm
            .wait_for_line(STARTED, true, timeout)
            .context("the bare initramfs's init did not start")?;
        let ms = parse_started(&line)
            .with_context(|| format!("cannot read init's start time from {line:?}"))?;
        Ok((ms, vm.accel().accel.to_string()))
    }
}

/// `/init` -> edge-init in an otherwise bare initramfs.
fn write_bare_initramfs(init: &Path, t: u64, out: &Path) -> Result<()> {
    let mut tree = initramfs_skeleton(t)?;
    let data = std::fs::read(init).with_context(|| format!("cannot read {}", init.display()))?;
    tree.add_file(RootPath::new("/init")?, data, Meta::root(0o755, t))?;
    write_cpio(&tree, out, Compression::Zstd)
}

fn parse_started(line: &str) -> Option<u64> {
    let rest = &line[line.find(STARTED)? + STARTED.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_inits_start_time() {
        assert_eq!(
            super::parse_started("[    0.6] edge-init: started at 591 ms since boot"),
            Some(591)
        );
        assert_eq!(super::parse_started("edge-init: started at soon"), None);
    }
}
