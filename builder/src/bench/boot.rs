//! Boot-to-ready of a built image: the boot spec and harness `edgeimg test` uses, without the
//! recipe's checks (they would add their own time, and one of them restarts the server).

use std::time::Duration;

use anyhow::{Context, Result};
use edgeimg_qemu::{Board as QemuBoard, Qemu, Ready, RunningVm, SpawnOptions};
use serde::Serialize;

use super::secs;
use crate::imagetest::qemu_boot::{boot_spec, qemu_boards};
use crate::outputs::manifest::Manifest;
use crate::plan::Plan;

pub const MEASURES: &str = "one headless QEMU boot per image, with the boot spec and harness \
    of `edgeimg test`. host s: host clock from starting QEMU to the EDGEIMG-READY console line \
    (server listening, model loaded); guest ms: the device's own figure on that line, from \
    kernel start; power-off s: from pressing the power button to QEMU exiting.";

/// Boots behind each figure the boot-to-ready target compares (the floor, and the guest images'
/// ready): one boot under TCG moves by 0.2-0.4 s from run to run (the same virt image was
/// +1016 and +1454 ms over its floor in two runs), so each is the median of this many.
pub const TARGET_BOOTS: usize = 3;

#[derive(Debug, Clone, Serialize)]
pub struct BootFigures {
    pub recipe: String,
    pub board: String,
    /// The emulated board and QEMU machine that stood in for it.
    pub qemu_board: String,
    pub qemu_machine: String,
    pub arch: String,
    pub accel: String,
    pub host_ready_s: f64,
    pub guest_ms_since_boot: u64,
    pub poweroff_s: f64,
}

/// Boot a built image headless on `machine` as `edgeimg test` does, up to its ready line.
pub fn boot_to_ready(
    plan: &Plan,
    manifest: &Manifest,
    machine: QemuBoard,
    ready_timeout: Duration,
) -> Result<(RunningVm, Ready)> {
    let spec = boot_spec(plan.board, machine, &plan.out_dir, manifest, "")?;
    let mut vm = Qemu::spawn(
        &spec,
        &SpawnOptions {
            console_log: Some(plan.out_dir.join("console.log")),
            ..Default::default()
        },
    )?;
    let ready = vm.wait_for_ready(ready_timeout)?;
    Ok((vm, ready))
}

/// One boot per machine that stands in for the board (a Pi 4 card: raspi4b and raspi3b).
pub fn measure(
    plan: &Plan,
    manifest: &Manifest,
    ready_timeout: Duration,
) -> Result<Vec<BootFigures>> {
    qemu_boards(plan.board)
        .iter()
        .map(|&machine| {
            measure_on(plan, manifest, machine, ready_timeout)
                .with_context(|| format!("on {machine}"))
        })
        .collect()
}

fn measure_on(
    plan: &Plan,
    manifest: &Manifest,
    board: QemuBoard,
    ready_timeout: Duration,
) -> Result<BootFigures> {
    let (mut vm, ready) = boot_to_ready(plan, manifest, board, ready_timeout)?;
    let poweroff = vm
        .powerdown(Duration::from_secs(60))
        .context("the guest did not power off cleanly after it was ready")?;
    Ok(BootFigures {
        recipe: plan.name.clone(),
        board: plan.board.name().to_string(),
        qemu_board: board.name().to_string(),
        qemu_machine: board.profile().machine.to_string(),
        arch: board.arch().to_string(),
        accel: ready.accel.to_string(),
        host_ready_s: secs(ready.host_boot_to_ready),
        guest_ms_since_boot: ready.line.ms_since_boot,
        poweroff_s: secs(poweroff),
    })
}
