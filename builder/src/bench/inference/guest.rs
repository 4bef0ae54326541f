//! The guest figures: a QEMU recipe's plan with the benchmark's model and each engine swapped
//! in, built, booted as `edgeimg test` boots it, and timed through the forwarded port.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use edge_config::{Engine, OPTIMISED_MARKER};
use edgeimg_qemu::OptimisedLine;
use serde::Serialize;

use super::client::Wait;
use super::models::PreparedModel;
use super::timing::Endpoint;
use super::{engine_name, served_figures, warmup, InferenceFigures};
use crate::bench::boot::{boot_to_ready, TARGET_BOOTS};
use crate::bench::floor::FloorBoot;
use crate::bench::secs;
use crate::bench::stats::median_ms;
use crate::imagetest::qemu_boot::qemu_boards;
use crate::outputs::manifest::Manifest;
use crate::plan::{ModelPlan, Plan};

/// The model guests serve: under emulation the others take seconds per run.
pub const GUEST_MODEL: &str = "ppocr-cls";
/// Concurrent clients against a guest (its one or two emulated CPUs).
const GUEST_CLIENTS: usize = 2;

/// What an engine costs a guest image, from the same builds and boots as its speed.
#[derive(Debug, Clone, Serialize)]
pub struct EngineCost {
    pub place: String,
    pub engine: String,
    /// The initramfs the guest boots (the whole root file system).
    pub initramfs_bytes: u64,
    /// libonnxruntime and its private glibc; none for tract, which is linked into the server.
    pub engine_library_bytes: u64,
    /// Boot to the EDGEIMG-READY line: host clock, and the guest's own from kernel start.
    pub host_ready_s: f64,
    /// The median of `guest_ready_ms_each`.
    pub guest_ready_ms: u64,
    pub guest_ready_ms_each: Vec<u64>,
    /// Boot to the optimised plan serving (EDGEIMG-OPTIMISED), guest clock: the server answers
    /// from a quick plan from ready on and swaps this one in.
    pub guest_optimised_ms: u64,
    /// For tract, whose boot the target judges: the floor (the same kernel to a bare init)
    /// booted just before each of the image's boots, so both sides of the margin run under the
    /// same host load; the median of `floor_ms_each`.
    pub floor_ms: Option<u64>,
    pub floor_ms_each: Vec<u64>,
}

/// `plan` serving `model` with `engine`, in its own output folder beside the plan's.
///
/// An image for timing inference alone, as the Pi recipe serves: no token and no model
/// updates (the update phase measures those on the recipe's own image), so no data disk nor
/// the file system driver only the update store needs.
pub fn guest_plan(plan: &Plan, engine: Engine, model: &PreparedModel) -> Plan {
    let name = format!("{}-{}-{}", plan.name, model.spec.name, engine_name(engine));
    let mut variant = plan.clone().without_model_updates();
    variant.out_dir = plan.out_dir.with_file_name(&name);
    variant.name = name;
    variant.runtime.engine = engine;
    variant.models = vec![ModelPlan {
        path: model.source.clone(),
        download: None,
        name: model.spec.name.to_string(),
        sha256: None,
        inputs: model.spec.frozen_inputs(),
    }];
    variant.tests = Vec::new();
    variant.runtime.bearer_token = None;
    variant
}

/// Boot `plan`'s built image, time `model` on it, power it off.
pub fn measure_guest(
    plan: &Plan,
    manifest: &Manifest,
    model: &PreparedModel,
    scratch: &Path,
    ready_timeout: Duration,
) -> Result<(InferenceFigures, EngineCost)> {
    // The first machine with a network (a Pi 4 card: raspi3b, since raspi4b has none).
    let board = *qemu_boards(plan.board)
        .iter()
        .find(|m| m.profile().nic.is_some())
        .with_context(|| format!("no QEMU machine with a network boots {}", plan.board))?;
    let floor = (plan.runtime.engine == Engine::Tract)
        .then(|| FloorBoot::prepare(plan, manifest, board, scratch))
        .transpose()?;
    // Boots to ready for the boot target's median; the last one is timed on. Each
    // previous guest is gone before the next floor boots.
    let mut ready_each = Vec::new();
    let mut floor_each = Vec::new();
    let mut last = None;
    for _ in 0..TARGET_BOOTS {
        drop(last.take());
        if let Some(floor) = &floor {
            let (ms, _accel) = floor
                .boot_once(ready_timeout)
                .context("measuring the boot floor beside the image")?;
            floor_each.push(ms);
        }
        let (vm, ready) = boot_to_ready(plan, manifest, board, ready_timeout)?;
        ready_each.push(ready.line.ms_since_boot);
        last = Some((vm, ready));
    }
    let (mut vm, ready) = last.context("the bench boots each guest at least once")?;
    // Timed on the plan it serves for good: a server starts on a quick one (edge-runtime's
    // `start_plan`).
    let line = vm.wait_for_line(OPTIMISED_MARKER, true, ready_timeout)?;
    let optimised = OptimisedLine::parse(&line)?.ms_since_boot;
    let addr = vm.api_addr().context("the API port was not forwarded")?;
    let place = format!(
        "guest {} ({}, {})",
        board.name(),
        board.profile().machine,
        ready.accel
    );
    let endpoint = Endpoint {
        url: format!("http://{addr}/v2/models/{}/infer", model.spec.name),
        request: &model.request,
        json_len: model.json_len,
        // QEMU needs the host's CPUs for the guest; a polling client would take one of two.
        latency_wait: Wait::Block,
    };
    let runs = model.spec.guest_runs;
    let figures = served_figures(
        &place,
        plan.runtime.engine,
        model,
        &endpoint,
        warmup(runs),
        runs,
        GUEST_CLIENTS,
    )
    .with_context(|| format!("--- console tail ---\n{}", vm.console_tail(20)))?;
    vm.powerdown(Duration::from_secs(60))
        .context("the guest did not power off cleanly after the benchmark")?;
    let initrd = manifest.boot.as_ref().and_then(|b| b.initrd.as_deref());
    let cost = EngineCost {
        place,
        engine: engine_name(plan.runtime.engine).to_string(),
        initramfs_bytes: manifest
            .outputs
            .iter()
            .find(|o| Some(o.file.as_str()) == initrd)
            .context("the guest image has no initramfs output")?
            .size,
        engine_library_bytes: manifest
            .engine
            .iter()
            .flat_map(|e| &e.libraries)
            .map(|l| l.size)
            .sum(),
        host_ready_s: secs(ready.host_boot_to_ready),
        guest_ready_ms: median_ms(&ready_each),
        guest_ready_ms_each: ready_each,
        guest_optimised_ms: optimised,
        floor_ms: (!floor_each.is_empty()).then(|| median_ms(&floor_each)),
        floor_ms_each: floor_each,
    };
    Ok((figures, cost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan_of_recipe;

    #[test]
    fn the_guest_image_has_no_model_updates_nor_the_data_disk_driver_they_needed() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[image]\nname = \"d\"\nboard = \"qemu-aarch64\"\n\
            [model]\npath = \"model.onnx\"\n[runtime]\nmodel_updates = true\nbearer_token_env = \"EDGE_TOKEN\"\n";
        let plan = plan_of_recipe(dir.path(), text);
        let has_ext4 = |p: &Plan| p.kernel.modules.iter().any(|m| m.name == "ext4");
        assert!(plan.runtime.model_updates.is_some() && has_ext4(&plan));

        let model = PreparedModel {
            spec: &super::super::models::MODELS[0],
            source: dir.path().join("cls.onnx"),
            frozen: dir.path().join("cls-frozen.onnx"),
            input_file: dir.path().join("input.bin"),
            request: Vec::new(),
            json_len: 0,
        };
        let guest = guest_plan(&plan, Engine::Onnxruntime, &model);
        assert!(guest.runtime.model_updates.is_none());
        assert!(!has_ext4(&guest), "{:?}", guest.kernel.modules);
        assert_eq!(guest.runtime.engine, Engine::Onnxruntime);
        assert_eq!(guest.models[0].path, model.source);
        assert_eq!(guest.out_dir, plan.out_dir.with_file_name(&guest.name));

        // A recipe that asks for the driver itself keeps it.
        let plan = plan_of_recipe(
            dir.path(),
            &format!("{text}[kernel]\nmodules = [\"ext4\"]\n"),
        );
        let guest = guest_plan(&plan, Engine::Tract, &model);
        assert!(has_ext4(&guest), "{:?}", guest.kernel.modules);
    }
}
