//! The recipe's `[[test]]` checks, run against a live Open Inference Protocol endpoint (the
//! booted image). Inputs come from the recipe (inline arrays or seeded random data shaped by
//! the model's metadata, which the device itself reports); outputs are compared with the
//! recipe's expected values and/or a reference endpoint (the host's real ONNX Runtime).

mod attack;
mod client;
pub mod command;
pub mod device;
mod load;
mod picture;
mod tensor;
mod update;

pub use client::{InferClient, ModelMetadata, TensorMetadata};
pub use tensor::Tensor;
pub use update::{prepare_upload, UpdateContext};

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::recipe::{flatten_numbers, TestCase};

#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub name: String,
    pub passed: bool,
    /// What was compared and the largest difference, or why it failed.
    pub detail: String,
}

/// Run one case. `reference` answers the same request with the host's ONNX Runtime.
pub fn run_case(
    device: &InferClient,
    reference: Option<&InferClient>,
    model: &str,
    case: &TestCase,
    context: &UpdateContext,
) -> CheckOutcome {
    let result = match (&case.load, &case.attack, &case.update) {
        (Some(load), _, _) => load::run_load(device, reference, model, case, load.get_ref()),
        (None, Some(check), _) => {
            attack::run_attack(device, reference, model, case, check.get_ref())
        }
        (None, None, Some(check)) => {
            update::run_update(device, model, case, check.get_ref(), context)
        }
        (None, None, None) => try_case(device, reference, model, case),
    };
    match result {
        Ok(detail) => CheckOutcome {
            name: case.name.get_ref().clone(),
            passed: true,
            detail,
        },
        Err(e) => CheckOutcome {
            name: case.name.get_ref().clone(),
            passed: false,
            detail: format!("{e:#}"),
        },
    }
}

fn try_case(
    device: &InferClient,
    reference: Option<&InferClient>,
    model: &str,
    case: &TestCase,
) -> Result<String> {
    let meta = device.metadata(model)?;
    let inputs = build_inputs(&meta, &case.inputs)?;
    let outputs = device
        .infer(model, &inputs)
        .context("inference on the device")?;
    let mut notes = Vec::new();
    for (name, expected) in &case.expect {
        let expected = flatten_numbers(expected).with_context(|| format!("test.expect.{name}"))?;
        let got = outputs
            .get(name)
            .with_context(|| format!("the device returned no output {name:?}"))?;
        let diff = max_abs_diff(&got.data, &expected, name)?;
        if diff > case.tolerance() {
            bail!(
                "output {name} differs from the expected values by {diff:e} > tolerance {:e}",
                case.tolerance()
            );
        }
        notes.push(format!("{name} = expected (max |diff| {diff:.2e})"));
    }
    if case.compare_onnxruntime {
        let reference = reference.context(
            "compare_onnxruntime needs the host's ONNX Runtime, which could not be started",
        )?;
        let want = reference
            .infer(model, &inputs)
            .context("inference on the host's ONNX Runtime")?;
        for (name, w) in &want {
            let got = outputs
                .get(name)
                .with_context(|| format!("the device returned no output {name:?}"))?;
            if got.shape != w.shape {
                bail!(
                    "output {name} has shape {:?} on the device but {:?} on the host",
                    got.shape,
                    w.shape
                );
            }
            let diff = max_abs_diff(&got.data, &w.data, name)?;
            if diff > case.tolerance() {
                bail!("output {name} differs from the host's ONNX Runtime by {diff:e} > tolerance {:e}", case.tolerance());
            }
            notes.push(format!(
                "{name} = host ONNX Runtime (max |diff| {diff:.2e})"
            ));
        }
    }
    if notes.is_empty() {
        notes.push(format!("answered with {} output(s)", outputs.len()));
    }
    Ok(notes.join("; "))
}

/// Inputs of the case, shaped and typed as the device's model metadata says.
pub fn build_inputs(
    meta: &ModelMetadata,
    given: &BTreeMap<String, toml::Value>,
) -> Result<Vec<Tensor>> {
    for name in given.keys() {
        if !meta.inputs.iter().any(|i| &i.name == name) {
            let names: Vec<&str> = meta.inputs.iter().map(|i| i.name.as_str()).collect();
            bail!("test input {name:?} is not an input of the model; its inputs are {names:?}");
        }
    }
    meta.inputs
        .iter()
        .map(|input| {
            let value = given.get(&input.name).with_context(|| {
                format!("the test gives no value for model input {:?}", input.name)
            })?;
            Tensor::from_recipe(input, value)
        })
        .collect()
}

fn max_abs_diff(got: &[f64], want: &[f64], name: &str) -> Result<f64> {
    if got.len() != want.len() {
        bail!(
            "output {name} has {} values, expected {}",
            got.len(),
            want.len()
        );
    }
    Ok(got
        .iter()
        .zip(want)
        .map(|(a, b)| {
            if a.is_nan() || b.is_nan() {
                f64::INFINITY
            } else {
                (a - b).abs()
            }
        })
        .fold(0.0, f64::max))
}
