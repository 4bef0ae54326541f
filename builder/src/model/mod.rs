//! Model preparation: check that a file is an ONNX model, read what it takes and gives, and
//! freeze its symbolic input dims to the recipe's shapes, so tract can plan it and ONNX
//! Runtime can optimise it.
//!
//! ```no_run
//! # use std::collections::BTreeMap;
//! let bytes = std::fs::read("tests/models/tiny-mlp.onnx")?;
//! let info = edgeimg::model::inspect_model(&bytes)?;
//! let shapes = BTreeMap::from([("x".to_string(), vec![1, 16])]);
//! let (frozen, frozen_info) = edgeimg::model::freeze_model(&bytes, &shapes)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod decode;
mod error;
mod external;
pub mod fetch;
mod freeze;
mod info;
mod proto;
mod settle;
mod types;

pub use error::{ModelError, Role};
pub use freeze::freeze_model;
pub use info::{inspect_model, ModelInfo, OpsetId, TensorInfo, ValueKind};
pub use types::{Dim, DimList, ElemType};

#[cfg(test)]
mod tests;
