//! What a new model version must pass before it serves: the signature the clients rely on
//! (input and output names, types and shapes) and the golden inference.

use edge_config::GoldenCheck;

use crate::engine::Model;
use crate::tensor::{DataType, Tensor, TensorData, TensorSpec};

/// Why the new version's inputs or outputs differ from the serving one's, if they do. A dimension
/// of any size (-1) in the new model accepts what the serving one declares.
pub fn signature_mismatch(serving: &Model, new: &Model) -> Option<String> {
    let compare = |kind: &str, old: &[TensorSpec], new: &[TensorSpec]| -> Option<String> {
        let names = |specs: &[TensorSpec]| specs.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        if names(old) != names(new) {
            return Some(format!(
                "its {kind}s are {:?}, the serving version's are {:?}",
                names(new),
                names(old)
            ));
        }
        old.iter().zip(new).find_map(|(o, n)| {
            let shape_fits = o.shape.len() == n.shape.len()
                && o.shape.iter().zip(&n.shape).all(|(&o, &n)| n < 0 || o == n);
            (o.datatype != n.datatype || !shape_fits).then(|| {
                format!(
                    "{kind} '{}' is {} {:?}, the serving version's is {} {:?}",
                    o.name, n.datatype, n.shape, o.datatype, o.shape
                )
            })
        })
    };
    compare("input", &serving.inputs, &new.inputs)
        .or_else(|| compare("output", &serving.outputs, &new.outputs))
}

/// Runs the golden inference on `model`; a description of the outputs, or why it failed.
/// Inputs come from `golden` (shaped as the model declares), else are ones of the declared
/// shapes (a dimension of any size taken as 1). Every output must be finite, and equal
/// `golden.expect` within its tolerance where given.
pub fn golden_inference(model: &Model, golden: Option<&GoldenCheck>) -> Result<String, String> {
    // The golden check's inputs and expectations are numbers; a string has neither.
    if let Some(spec) = model
        .inputs
        .iter()
        .chain(&model.outputs)
        .find(|s| s.datatype == DataType::Bytes)
    {
        return Err(format!(
            "'{}' is BYTES, and the golden inference that checks an update is numeric: a model with string tensors takes no model updates (turn runtime.model_updates off, or reflash to change it)",
            spec.name
        ));
    }
    let inputs = model
        .inputs
        .iter()
        .map(|spec| {
            let shape: Vec<usize> = spec.shape.iter().map(|&d| d.max(1) as usize).collect();
            let count: usize = shape.iter().product();
            let data = match golden.and_then(|g| g.inputs.iter().find(|t| t.name == spec.name)) {
                Some(given) if given.data.len() == count => given.data.clone(),
                Some(given) => {
                    return Err(format!(
                        "the golden input '{}' has {} values, the model's shape {:?} takes {count}",
                        spec.name,
                        given.data.len(),
                        spec.shape
                    ))
                }
                None => vec![1.0; count],
            };
            let mut typed = TensorData::with_capacity(spec.datatype, count);
            for x in &data {
                // The request decoder's conversion: refuses a value the type cannot hold.
                if !typed.push_json_number(&x.to_string()) {
                    return Err(format!(
                        "the golden input '{}' holds {x}, which is not a {}",
                        spec.name, spec.datatype
                    ));
                }
            }
            Ok(Tensor {
                name: spec.name.clone(),
                shape,
                data: typed,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let outputs = model
        .run(inputs)
        .map_err(|e| format!("the golden inference failed: {e}"))?
        .outputs;
    let mut notes = Vec::new();
    for output in &outputs {
        let values = as_numbers(&output.data);
        if values.iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "the golden inference gave output '{}' a value that is not finite",
                output.name
            ));
        }
        if let Some(want) = golden.and_then(|g| g.expect.iter().find(|t| t.name == output.name)) {
            let tolerance = golden.map_or(0.0, |g| g.tolerance);
            if want.data.len() != values.len() {
                return Err(format!(
                    "the golden inference gave output '{}' {} values, expected {}",
                    output.name,
                    values.len(),
                    want.data.len()
                ));
            }
            let diff = values
                .iter()
                .zip(&want.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            if diff > tolerance {
                return Err(format!(
                    "the golden inference gave output '{}' values {diff:e} away from the expected ones (tolerance {tolerance:e})",
                    output.name
                ));
            }
            notes.push(format!(
                "{} = expected (max |diff| {diff:.1e})",
                output.name
            ));
        } else {
            notes.push(format!("{} finite", output.name));
        }
    }
    Ok(notes.join(", "))
}

fn as_numbers(data: &TensorData) -> Vec<f64> {
    match serde_json::to_value(data) {
        Ok(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_f64()
                    .or_else(|| v.as_bool().map(f64::from))
                    .unwrap_or(f64::NAN)
            })
            .collect(),
        _ => Vec::new(),
    }
}
