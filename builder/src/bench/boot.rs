//! Boot-to-ready of a built image: the boot spec and harness `edgeimg test` uses, without the
//! recipe's checks (they would add their own time, and one of them restarts the server).

use std::time::Duration;

use anyhow::{Context, Result};
use edgeimg_qemu::{Qemu, Ready, RunningVm, SpawnOptions};
use serde::Serialize;

use super::secs;
use crate::imagetest::qemu_boot::{boot_spec, qemu_board};
use crate::outputs::manifest::Manifest;
use crate::plan::Plan;

pub const MEASURES: &str = "one headless QEMU boot per image, with the boot spec and harness \
    of `edgeimg test`. host s: host clock from starting QEMU to the EDGEIMG-READY console line \
    (server listening, model loaded); guest ms: the device's own figure on that line, from \
    kernel start; power-off s: from pressing the power button to QEMU exiting.";

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

/// Boot a built image headless as `edgeimg test` does, up to its ready line.
pub fn boot_to_ready(
    plan: &Plan,
    manifest: &Manifest,
    ready_timeout: Duration,
) -> Result<(RunningVm, Ready)> {
    let spec = boot_spec(plan.board, &plan.out_dir, manifest, "")?;
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

pub fn measure(plan: &Plan, manifest: &Manifest, ready_timeout: Duration) -> Result<BootFigures> {
    let (mut vm, ready) = boot_to_ready(plan, manifest, ready_timeout)?;
    let poweroff = vm
        .powerdown(Duration::from_secs(60))
        .context("the guest did not power off cleanly after it was ready")?;
    let board = qemu_board(plan.board);
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
