//! Inference answers as numbers by output name, and how close two answers are.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Each output's data, flattened row-major (booleans as 0/1).
pub type Outputs = BTreeMap<String, Vec<f64>>;

#[derive(Deserialize)]
struct Answer {
    outputs: Vec<Output>,
}

#[derive(Deserialize)]
struct Output {
    name: String,
    data: serde_json::Value,
}

/// The outputs of an Open Inference Protocol JSON answer.
pub fn parse_outputs(body: &[u8]) -> Result<Outputs> {
    let answer: Answer = serde_json::from_slice(body).with_context(|| {
        format!(
            "the answer is not Open Inference Protocol JSON: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })?;
    answer
        .outputs
        .into_iter()
        .map(|o| {
            let data = flatten_json(&o.data).with_context(|| format!("output {}", o.name))?;
            Ok((o.name, data))
        })
        .collect()
}

/// A JSON number, boolean or (nested) array of them, flattened row-major.
pub fn flatten_json(value: &serde_json::Value) -> Result<Vec<f64>> {
    fn walk(v: &serde_json::Value, out: &mut Vec<f64>) -> Result<()> {
        match v {
            serde_json::Value::Number(n) => out.push(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::Bool(b) => out.push(if *b { 1.0 } else { 0.0 }),
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, out)?;
                }
            }
            other => bail!("expected numbers, found {other}"),
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(value, &mut out)?;
    Ok(out)
}

/// Fails unless `got` has every output of `want`, each within `tolerance` (NaN never is).
pub fn compare(got: &Outputs, want: &Outputs, tolerance: f64) -> Result<()> {
    for (name, expected) in want {
        let actual = got
            .get(name)
            .with_context(|| format!("the answer has no output {name:?}"))?;
        if actual.len() != expected.len() {
            bail!(
                "output {name} has {} values, the reference {}",
                actual.len(),
                expected.len()
            );
        }
        let worst = actual
            .iter()
            .zip(expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, |worst: f64, d| {
                if d.is_nan() {
                    f64::INFINITY
                } else {
                    worst.max(d)
                }
            });
        if worst > tolerance {
            bail!("output {name} differs from the reference by {worst:e} > {tolerance:e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_flatten_by_name() {
        let body = br#"{"model_name":"m","outputs":[
            {"name":"y","datatype":"FP32","shape":[1,2,2],"data":[[[1,2],[3,4.5]]]},
            {"name":"ok","datatype":"BOOL","shape":[2],"data":[true,false]}]}"#;
        let outputs = parse_outputs(body).unwrap();
        assert_eq!(outputs["y"], vec![1.0, 2.0, 3.0, 4.5]);
        assert_eq!(outputs["ok"], vec![1.0, 0.0]);
        assert!(parse_outputs(b"{\"error\": \"x\"}").is_err());
        assert!(parse_outputs(br#"{"outputs":[{"name":"s","data":["a"]}]}"#).is_err());
    }

    #[test]
    fn compare_catches_missing_outputs_lengths_and_differences() {
        let want: Outputs = [("y".to_string(), vec![1.0, 2.0])].into();
        let near: Outputs = [("y".to_string(), vec![1.0, 2.00001])].into();
        assert!(compare(&near, &want, 1e-4).is_ok());
        let far: Outputs = [("y".to_string(), vec![1.0, 2.1])].into();
        assert!(compare(&far, &want, 1e-4)
            .unwrap_err()
            .to_string()
            .contains("differs"));
        let short: Outputs = [("y".to_string(), vec![1.0])].into();
        assert!(compare(&short, &want, 1e-4).is_err());
        let nan: Outputs = [("y".to_string(), vec![1.0, f64::NAN])].into();
        assert!(compare(&nan, &want, 1e-4).is_err());
        assert!(compare(&Outputs::new(), &want, 1e-4).is_err());
    }
}
