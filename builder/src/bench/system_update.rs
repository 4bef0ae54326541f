//! A/B system updates on a booted guest, per board: the artifact's size, the time to stream
//! it to the device (stored and checked on `/data`), and from the first byte sent to the new
//! version committed (slot written and read back, trial boot, READY, golden check).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::boot::boot_to_ready;
use super::round3;
use crate::imagetest::qemu_boot::{qemu_boards, reset_working_copies};
use crate::imagetest::system_update::{apply, Device};
use crate::outputs::manifest::Manifest;
use crate::packages::Progress;
use crate::pipeline::{build_if_stale, BuildOptions};
use crate::plan::Plan;
use crate::recipe::{Board, SystemUpdateCheck, SystemUpdateVerdict, TestCase};

pub const MEASURES: &str = "per recipe with a committed system_update check, on every board: \
    the recipe's own, and the same recipe with only image.board changed (built, not timed). \
    One boot of the board's QEMU machine with a network (TCG here; the Pi card on raspi3b, \
    QEMU's raspi4b has no network), that check's update built as `edgeimg test` builds it (not \
    timed) and pushed once. update: the .update artifact's size. push s: from the first byte \
    sent to the device's answer that it stored and checked it. write s: init writing the \
    inactive slot and reading it back, by the guest's clock (its EDGEIMG-UPDATE switched \
    line). push to committed s: from the first byte sent to the new version seen committed on \
    GET /v2/edgeimg/system (the write, the reboot into the trial, the server's golden check, \
    init's commit); it includes QEMU's restart by the harness.";

/// The boards a system update is measured on.
pub const BOARDS: [Board; 3] = [Board::QemuAarch64, Board::QemuX86_64, Board::Rpi4];

#[derive(Debug, Clone, Serialize)]
pub struct SystemUpdateFigures {
    pub recipe: String,
    pub board: String,
    pub qemu_machine: String,
    pub accel: String,
    pub update_bytes: u64,
    pub push_s: f64,
    pub write_s: Option<f64>,
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

/// `plan`'s committed update measured on `board`: on the plan's own image, or on the same
/// recipe built for `board` into `OUT/boards/<board>/`.
pub fn measure_on(
    plan: &Plan,
    manifest: &Manifest,
    board: Board,
    cache_dir: &Path,
    ready_timeout: Duration,
) -> Result<SystemUpdateFigures> {
    if board == plan.board {
        return measure(plan, manifest, cache_dir, ready_timeout);
    }
    let set = BTreeMap::from([(
        "image.board".to_string(),
        toml::Value::String(board.name().to_string()),
    )]);
    let variant = plan.variant(&set, plan.out_dir.join("boards").join(board.name()))?;
    let (built, _) = build_if_stale(
        &variant,
        &BuildOptions {
            cache_dir: cache_dir.to_path_buf(),
            progress: Progress::hidden(),
        },
    )
    .with_context(|| format!("building {} for {}", plan.name, board.name()))?;
    measure(&variant, &built.manifest, cache_dir, ready_timeout)
}

fn measure(
    plan: &Plan,
    manifest: &Manifest,
    cache_dir: &Path,
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
    let machine = *qemu_boards(plan.board)
        .iter()
        .find(|m| m.profile().nic.is_some())
        .with_context(|| format!("no QEMU machine with a network boots {}", plan.board.name()))?;
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
        write_s: applied.write_s.map(round3),
        push_to_committed_s: round3(applied.outcome_s),
    })
}
