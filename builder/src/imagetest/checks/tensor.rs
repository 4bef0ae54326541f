use anyhow::{bail, Context, Result};

use super::client::TensorMetadata;
use crate::recipe::input_values;

/// A tensor as the Open Inference Protocol's JSON carries it: flat row-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub data: Vec<f64>,
}

impl Tensor {
    /// From a recipe value: a (nested) array of numbers, `{ random = SEED }`, or a picture
    /// `{ image = FILE, crop, mean, std }` (FILE already a local path; decoded by the
    /// `picture` module).
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
            toml::Value::Table(t) if t.contains_key("image") => {
                super::picture::tensor_data(t, &meta.shape)
            }
            other => input_values(other, count as usize),
        }
        .with_context(|| format!("test input {:?}", meta.name))?;
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
