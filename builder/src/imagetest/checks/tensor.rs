use anyhow::{bail, Context, Result};

use super::client::TensorMetadata;

/// A tensor as the Open Inference Protocol's JSON carries it: flat row-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub data: Vec<f64>,
}

impl Tensor {
    /// From a recipe value: a (nested) array of numbers, or `{ random = SEED }`.
    pub fn from_recipe(meta: &TensorMetadata, value: &toml::Value) -> Result<Tensor> {
        if meta.shape.iter().any(|d| *d < 0) {
            bail!(
                "model input {:?} has shape {:?} with unknown dims; freeze it in the recipe's model.inputs",
                meta.name,
                meta.shape
            );
        }
        let count: i64 = meta.shape.iter().product();
        let data = match value {
            toml::Value::Table(t) if t.contains_key("random") => {
                let seed = t["random"]
                    .as_integer()
                    .context("`random` takes an integer seed")?;
                let mut rng = fastrand::Rng::with_seed(seed as u64);
                (0..count).map(|_| rng.f32() as f64).collect()
            }
            other => {
                flatten_numbers(other).with_context(|| format!("test input {:?}", meta.name))?
            }
        };
        if data.len() as i64 != count {
            bail!(
                "test input {:?} has {} values, but the model's shape {:?} takes {count}",
                meta.name,
                data.len(),
                meta.shape
            );
        }
        Ok(Tensor {
            name: meta.name.clone(),
            datatype: meta.datatype.clone(),
            shape: meta.shape.clone(),
            data,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "datatype": self.datatype,
            "shape": self.shape,
            "data": self.data,
        })
    }
}

/// A number or a (nested) array of numbers, flattened row-major.
pub fn flatten_numbers(value: &toml::Value) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    push_numbers(value, &mut out)?;
    Ok(out)
}

fn push_numbers(value: &toml::Value, out: &mut Vec<f64>) -> Result<()> {
    match value {
        toml::Value::Integer(i) => out.push(*i as f64),
        toml::Value::Float(f) => out.push(*f),
        toml::Value::Boolean(b) => out.push(if *b { 1.0 } else { 0.0 }),
        toml::Value::Array(items) => {
            for item in items {
                push_numbers(item, out)?;
            }
        }
        other => bail!(
            "expected numbers or arrays of numbers, found {}",
            other.type_str()
        ),
    }
    Ok(())
}
