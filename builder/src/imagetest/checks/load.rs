//! `load = { ... }` checks: the load test edge-runtime's host test runs (`edgeimg_load::run`),
//! here against the booted device through the forwarded port.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use edgeimg_load::{Good, LoadSpec, Target};

use super::{InferClient, ModelMetadata, Tensor};
use crate::recipe::{LoadCheck, TestCase};

/// Distinct inputs the clients take turns with, so an answer handed to the wrong request shows.
const VARIANTS: i64 = 8;

/// Runs the load; the figures on success, the problems and figures on failure.
pub fn run_load(
    device: &InferClient,
    reference: Option<&InferClient>,
    model: &str,
    case: &TestCase,
    load: &LoadCheck,
) -> Result<String> {
    let (good, source) = good_requests(device, reference, model, case, VARIANTS)?;
    let spec = LoadSpec {
        clients: load.clients,
        requests: load.requests,
        garbage_every: load.garbage_every,
        // The oversized request sends one byte more than the device says it takes.
        max_body_bytes: device.max_body_bytes()?,
        tolerance: case.tolerance(),
        time_limit: Duration::from_secs(load.seconds),
    };
    let report = edgeimg_load::run(&target(device, model), &good, &spec)?;
    let problems = report.problems();
    if !problems.is_empty() {
        bail!(
            "{}\n    figures: {}",
            problems.join("\n    "),
            report.summary()
        );
    }
    Ok(format!(
        "{}; every good answer = {source}",
        report.summary()
    ))
}

/// `variants` requests built from the case's inputs, each with the answer it must get: from
/// the host's ONNX Runtime (`compare_onnxruntime`) or the device's own at rest; and which.
pub(super) fn good_requests(
    device: &InferClient,
    reference: Option<&InferClient>,
    model: &str,
    case: &TestCase,
    variants: i64,
) -> Result<(Vec<Good>, &'static str)> {
    let meta = device.metadata(model)?;
    let bodies = (0..variants)
        .map(|variant| request_body(&meta, &case.inputs, variant))
        .collect::<Result<Vec<_>>>()?;
    let (answers_from, source) = if case.compare_onnxruntime {
        let reference = reference.context(
            "compare_onnxruntime needs the host's ONNX Runtime, which could not be started",
        )?;
        (reference, "the host's ONNX Runtime")
    } else {
        (device, "the device's own at rest")
    };
    Ok((
        edgeimg_load::reference_answers(&target(answers_from, model), bodies)?,
        source,
    ))
}

pub(super) fn target(client: &InferClient, model: &str) -> Target {
    Target {
        base: client.base().to_string(),
        model: model.to_string(),
        token: client.token().map(str::to_string),
    }
}

/// The case's inputs for `variant`: `{ random = SEED }` becomes SEED + variant, inputs the
/// case does not give are `{ random = variant }`, literal values stay as they are.
fn request_body(
    meta: &ModelMetadata,
    given: &BTreeMap<String, toml::Value>,
    variant: i64,
) -> Result<Vec<u8>> {
    let inputs = meta
        .inputs
        .iter()
        .map(|input| {
            let value = match given.get(&input.name) {
                Some(toml::Value::Table(t)) if t.contains_key("random") => {
                    let seed = t["random"]
                        .as_integer()
                        .context("`random` takes an integer seed")?;
                    random(seed + variant)
                }
                Some(value) => value.clone(),
                None => random(variant),
            };
            Ok(Tensor::from_recipe(input, &value)?.to_json())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::to_vec(
        &serde_json::json!({ "inputs": inputs }),
    )?)
}

fn random(seed: i64) -> toml::Value {
    toml::Value::Table(toml::map::Map::from_iter([(
        "random".to_string(),
        toml::Value::Integer(seed),
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imagetest::checks::TensorMetadata;

    fn meta() -> ModelMetadata {
        let input = |name: &str| TensorMetadata {
            name: name.into(),
            datatype: "FP32".into(),
            shape: vec![1, 2],
        };
        ModelMetadata {
            name: "m".into(),
            versions: vec!["1".into()],
            inputs: vec![input("a"), input("b")],
            outputs: vec![],
        }
    }

    #[test]
    fn random_seeds_vary_per_variant_and_literals_stay() {
        let given: BTreeMap<String, toml::Value> =
            toml::from_str("a = { random = 7 }\nb = [[0.5, 1.5]]").unwrap();
        let body = |v| -> serde_json::Value {
            serde_json::from_slice(&request_body(&meta(), &given, v).unwrap()).unwrap()
        };
        let (first, second) = (body(0), body(1));
        assert_ne!(first["inputs"][0]["data"], second["inputs"][0]["data"]);
        assert_eq!(first["inputs"][1]["data"], serde_json::json!([0.5, 1.5]));
        assert_eq!(first["inputs"][1], second["inputs"][1]);
        assert_eq!(first, body(0), "a variant is the same every time");
    }

    #[test]
    fn missing_inputs_are_random() {
        let body = request_body(&meta(), &BTreeMap::new(), 3).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["inputs"][1]["shape"], serde_json::json!([1, 2]));
    }
}
