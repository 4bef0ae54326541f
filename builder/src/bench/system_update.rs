//! A/B system updates on a booted guest, per board: the artifact's size, the time to stream
//! it to the device (stored and checked on `/data`), and from the first byte sent to the new
//! version committed (slot written and read back, trial boot, READY, golden check).

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::boot::boot_to_ready;
use super::round3;
use crate::imagetest::qemu_boot::{qemu_board, reset_working_copies};
use crate::imagetest::system_update::{apply, Device};
use crate::outputs::manifest::Manifest;
use crate::plan::Plan;
use crate::recipe::{SystemUpdateCheck, SystemUpdateVerdict, TestCase};

pub const MEASURES: &str = "per recipe with a committed system_update check, one boot of the \
    board's own QEMU machine (TCG here): that check's update built as `edgeimg test` builds it \
    (not timed) and pushed once. update: the .update artifact's size. push s: from the first \
    byte sent to the device's answer that it stored and checked it. push to committed s: from \
    the first byte sent to the new version seen committed on GET /v2/edgeimg/system (init \
    writes the slot and reads it back, reboots into the trial, the server passes its golden \
    check, init commits); it includes QEMU's restart by the harness.";

#[derive(Debug, Clone, Serialize)]
pub struct SystemUpdateFigures {
    pub recipe: String,
    pub board: String,
    pub qemu_machine: String,
    pub accel: String,
    pub update_bytes: u64,
    pub push_s: f64,
    pub push_to_committed_s: f64,
}

/// The update to measure: the recipe's first `system_update` check that expects a commit.
pub fn update_case(plan: &Plan) -> Option<(&TestCase, &SystemUpdateCheck)> {
    plan.tests.iter().find_map(|case| {
        let check = case.system_update.as_ref()?.get_ref();
        (check.expect == SystemUpdateVerdict::Committed && check.kill.is_none())
            .then_some((case, check))
    })
}

pub fn measure(
    plan: &Plan,
    manifest: &Manifest,
    cache_dir: &std::path::Path,
    ready_timeout: Duration,
) -> Result<SystemUpdateFigures> {
    let (case, check) =
        update_case(plan).context("the recipe has no committed system_update check")?;
    let model = &manifest
        .models
        .first()
        .context("the image serves no model")?
        .name;
    let token = plan.runtime.api_token()?;
    let machine = qemu_board(plan.board);
    reset_working_copies(manifest, &plan.out_dir)?;
    let (mut vm, ready) = boot_to_ready(plan, manifest, machine, ready_timeout)?;
    let device = Device {
        plan,
        manifest,
        machine,
        token: token.as_deref(),
        cache_dir,
        ready_timeout,
    };
    let applied = apply(&device, &mut vm, case, check, model, 0)
        .with_context(|| format!("--- console tail ---\n{}", vm.console_tail(20)))?;
    vm.powerdown(Duration::from_secs(60))
        .context("the guest did not power off cleanly after the benchmark")?;
    Ok(SystemUpdateFigures {
        recipe: plan.name.clone(),
        board: plan.board.name().to_string(),
        qemu_machine: machine.to_string(),
        accel: ready.accel.to_string(),
        update_bytes: applied.artifact_bytes,
        push_s: round3(applied.push_s),
        push_to_committed_s: round3(applied.outcome_s),
    })
}
