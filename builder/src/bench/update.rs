//! Model updates on a booted guest: the time from the start of an upload to the device
//! answering that it serves the new version, and request latency at rest and during the
//! upload, check and swap. The recipe's first committed `update` check says what to upload.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::boot::boot_to_ready;
use super::round3;
use super::stats::{median, percentile};
use crate::imagetest::checks::{build_inputs, prepare_upload, InferClient};
use crate::imagetest::qemu_boot::{qemu_board, reset_working_copies};
use crate::outputs::manifest::Manifest;
use crate::plan::Plan;
use crate::recipe::{TestCase, UpdateCheck, UpdateVerdict};
use crate::update::{upload, Outcome, Upload};

pub const MEASURES: &str = "per QEMU recipe with model updates, one boot (TCG here): the \
    recipe's first committed update check's model, prepared and signed as `edgeimg test` does, \
    uploaded 3 times in a row (each a new version). upload-to-serving s: from starting \
    the upload to the device's answer that the new version serves (streamed to disk, fsynced, \
    loaded, checked, swapped), median of the uploads. Latency: one client asking the check's \
    inputs back to back, 40 requests before any upload, then all its requests while the \
    uploads ran; failed: requests during the uploads that did not get an answer.";

// Both are in MEASURES' text.
const UPLOADS: usize = 3;
const AT_REST: usize = 40;

#[derive(Debug, Clone, Serialize)]
pub struct UpdateFigures {
    pub recipe: String,
    pub arch: String,
    pub accel: String,
    pub model_bytes: u64,
    pub uploads: usize,
    pub upload_to_serving_s: Vec<f64>,
    pub upload_to_serving_median_s: f64,
    pub at_rest_p50_ms: f64,
    pub at_rest_p99_ms: f64,
    pub during_swap_requests: usize,
    pub during_swap_p50_ms: f64,
    pub during_swap_p99_ms: f64,
    pub failed: usize,
}

/// The update to measure with: the recipe's first `update` check that expects a commit.
pub fn update_case(plan: &Plan) -> Option<(&TestCase, &UpdateCheck)> {
    plan.tests.iter().find_map(|case| {
        let check = case.update.as_ref()?.get_ref();
        (check.expect == UpdateVerdict::Committed).then_some((case, check))
    })
}

pub fn measure(plan: &Plan, manifest: &Manifest, ready_timeout: Duration) -> Result<UpdateFigures> {
    let (case, check) = update_case(plan).context("the recipe has no committed update check")?;
    let model = &manifest
        .models
        .first()
        .context("the image serves no model")?
        .name;
    let scratch = tempfile::tempdir()?;
    let (file, signature) = prepare_upload(plan, check, scratch.path())?;
    let token = plan.runtime.api_token()?;
    reset_working_copies(manifest, &plan.out_dir)?;
    let (mut vm, ready) = boot_to_ready(plan, manifest, qemu_board(plan.board), ready_timeout)?;
    let addr = vm.api_addr().context("the API port was not forwarded")?;
    let device = InferClient::new(format!("http://{addr}"), token);
    let inputs = build_inputs(&device.metadata(model)?, &case.inputs)?;
    let time = || -> Result<f64> {
        let started = Instant::now();
        device.infer(model, &inputs)?;
        Ok(started.elapsed().as_secs_f64() * 1e3)
    };
    let at_rest = (0..AT_REST).map(|_| time()).collect::<Result<Vec<f64>>>()?;

    let stop = AtomicBool::new(false);
    let (uploads, (during, failed)) = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            let (mut during, mut failed) = (Vec::new(), 0usize);
            while !stop.load(Ordering::Relaxed) {
                match time() {
                    Ok(ms) => during.push(ms),
                    Err(_) => failed += 1,
                }
            }
            (during, failed)
        });
        let result = (0..UPLOADS)
            .map(|_| {
                let started = Instant::now();
                match upload(&Upload {
                    device: device.base(),
                    model: &file,
                    name: model,
                    token: device.token().map(str::to_string),
                    signature: signature.clone(),
                    allow_signature_change: false,
                    progress: false,
                })? {
                    Outcome::Serving { .. } => Ok(started.elapsed().as_secs_f64()),
                    Outcome::Refused { status, reason } => {
                        bail!("the device refused the update (HTTP {status}): {reason}")
                    }
                }
            })
            .collect::<Result<Vec<f64>>>();
        stop.store(true, Ordering::Relaxed);
        (result, client.join().unwrap_or_default())
    });
    let uploads =
        uploads.with_context(|| format!("--- console tail ---\n{}", vm.console_tail(20)))?;
    vm.powerdown(Duration::from_secs(60))
        .context("the guest did not power off cleanly after the benchmark")?;
    Ok(UpdateFigures {
        recipe: plan.name.clone(),
        arch: plan.arch.to_string(),
        accel: ready.accel.to_string(),
        model_bytes: std::fs::metadata(&file)?.len(),
        uploads: UPLOADS,
        upload_to_serving_median_s: round3(median(&uploads)),
        upload_to_serving_s: uploads.into_iter().map(round3).collect(),
        at_rest_p50_ms: round3(percentile(&at_rest, 50.0)),
        at_rest_p99_ms: round3(percentile(&at_rest, 99.0)),
        during_swap_requests: during.len(),
        during_swap_p50_ms: round3(percentile(&during, 50.0)),
        during_swap_p99_ms: round3(percentile(&during, 99.0)),
        failed,
    })
}
