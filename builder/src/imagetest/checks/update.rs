//! `update = { ... }` checks: a new model uploaded to the booted device (`edgeimg update`'s
//! code), prepared as the build prepares the image's own (dims frozen per `[model].inputs`),
//! signed as the check says, while clients keep asking; then what the device must have done:
//! committed (serving the new version, answering like the host's ONNX Runtime on the new model,
//! no request failed) or refused (a reason, the old version serving and answering as before).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::{build_inputs, max_abs_diff, InferClient, Tensor};
use crate::imagetest::host_server::start_reference;
use crate::model::freeze_model;
use crate::plan::Plan;
use crate::recipe::{TestCase, UpdateCheck, UpdateVerdict};
use crate::update::{sign_model, upload, Outcome, Upload};

/// What an update check needs beyond the device: the plan (paths, shapes, token) and the
/// cache the host reference's ONNX Runtime comes from.
pub struct UpdateContext<'a> {
    pub plan: &'a Plan,
    pub cache_dir: &'a Path,
}

pub fn run_update(
    device: &InferClient,
    model: &str,
    case: &TestCase,
    check: &UpdateCheck,
    ctx: &UpdateContext,
) -> Result<String> {
    let scratch = tempfile::tempdir()?;
    let (file, signature) = prepare_upload(ctx.plan, check, scratch.path())?;

    let meta = device.metadata(model)?;
    let before_version = device.serving_version(model)?;
    let inputs = build_inputs(&meta, &case.inputs)?;
    let before = device
        .infer(model, &inputs)
        .context("inference before the update")?;

    let stop = AtomicBool::new(false);
    let (asked, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let first_failure = std::sync::Mutex::new(None::<String>);
    let (outcome, upload_seconds) = std::thread::scope(|scope| {
        for _ in 0..check.clients {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    asked.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = device.infer(model, &inputs) {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_failure
                            .lock()
                            .unwrap()
                            .get_or_insert(format!("{e:#}"));
                    }
                }
            });
        }
        let started = Instant::now();
        let outcome = upload(&Upload {
            device: device.base(),
            model: &file,
            name: model,
            token: device.token().map(str::to_string),
            signature,
            allow_signature_change: false,
            progress: false,
        });
        let seconds = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        (outcome, seconds)
    });
    let outcome = outcome?;
    let (asked, failed) = (asked.into_inner(), failed.into_inner());
    let load = if check.clients > 0 {
        format!(
            "; {asked} requests from {} clients during it, {failed} failed",
            check.clients
        )
    } else {
        String::new()
    };
    if failed > 0 {
        bail!(
            "{failed} of {asked} requests failed during the update, first: {}",
            first_failure.into_inner().unwrap().unwrap_or_default()
        );
    }
    let after_version = device.serving_version(model)?;
    let after = device
        .infer(model, &inputs)
        .context("inference after the update")?;
    match (check.expect, outcome) {
        (UpdateVerdict::Committed, Outcome::Serving { version, .. }) => {
            if after_version != version {
                bail!("the device said it serves version {version}, its metadata says {after_version}");
            }
            let mut notes = vec![format!(
                "version {before_version} -> {version} in {upload_seconds:.2} s from upload to serving{load}"
            )];
            if case.compare_onnxruntime {
                let reference = start_reference(ctx.cache_dir, &[(model, &file)])
                    .context("starting the host's ONNX Runtime on the new model")?;
                let want = reference.client.infer(model, &inputs)?;
                notes.push(compare(
                    &after,
                    &want,
                    case.tolerance(),
                    "the host's ONNX Runtime on the new model",
                )?);
            }
            Ok(notes.join("; "))
        }
        (UpdateVerdict::Refused, Outcome::Refused { status, reason }) => {
            if after_version != before_version {
                bail!("refused (HTTP {status}), yet the version changed from {before_version} to {after_version}");
            }
            let same = compare(&after, &before, 0.0, "its answer before the upload")?;
            Ok(format!(
                "refused (HTTP {status}): {reason}; still version {after_version}, {same}{load}"
            ))
        }
        (UpdateVerdict::Committed, Outcome::Refused { status, reason }) => {
            bail!("expected the update committed, the device refused it (HTTP {status}): {reason}")
        }
        (UpdateVerdict::Refused, Outcome::Serving { version, .. }) => {
            bail!("expected the update refused, the device now serves it as version {version}")
        }
    }
}

/// The file an update check uploads, in `dir`: prepared as the build prepares the image's
/// model (dims frozen per `[model].inputs`), cut in half if `corrupt`; and its signature, with
/// the check's key or one made for the check alone (`wrong_key`).
pub fn prepare_upload(
    plan: &Plan,
    check: &UpdateCheck,
    dir: &Path,
) -> Result<(std::path::PathBuf, Option<String>)> {
    let recipe_dir = plan.recipe_path.parent().unwrap_or(Path::new("."));
    let source = recipe_dir.join(&check.model);
    let bytes = std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    // Model updates are for a recipe's one model (it refuses them with several).
    let shapes = plan
        .models
        .first()
        .map(|m| m.inputs.clone())
        .unwrap_or_default();
    let (mut frozen, _) =
        freeze_model(&bytes, &shapes).with_context(|| format!("model {}", source.display()))?;
    if check.corrupt {
        frozen.truncate(frozen.len() / 2);
    }
    let file = dir.join("update.onnx");
    std::fs::write(&file, &frozen)?;
    let signature = match (&check.key, check.wrong_key) {
        (Some(key), _) => Some(sign_model(&recipe_dir.join(key), &file)?),
        (None, true) => {
            let key = dir.join("stranger");
            crate::update::keygen(&key)?;
            Some(sign_model(&key.with_extension("key"), &file)?)
        }
        (None, false) => None,
    };
    Ok((file, signature))
}

/// Every output of `got` within `tolerance` of `want`'s; a note naming `what`.
fn compare(
    got: &std::collections::BTreeMap<String, Tensor>,
    want: &std::collections::BTreeMap<String, Tensor>,
    tolerance: f64,
    what: &str,
) -> Result<String> {
    let mut largest = 0.0f64;
    for (name, w) in want {
        let g = got
            .get(name)
            .with_context(|| format!("the device returned no output {name:?}"))?;
        let diff = max_abs_diff(&g.data, &w.data, name)?;
        if diff > tolerance {
            bail!("output {name} differs from {what} by {diff:e} > tolerance {tolerance:e}");
        }
        largest = largest.max(diff);
    }
    Ok(format!("answers = {what} (max |diff| {largest:.2e})"))
}
