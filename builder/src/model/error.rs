//! Everything that can be wrong with a model or with the shapes a recipe gives for it.
//! Each message names the problem and what to change.

use std::fmt;

use super::types::{Dim, DimList, ElemType};

/// Which side of the model a value is on, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Input,
    Output,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Input => "input",
            Role::Output => "output",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the model file is empty: give the path of an .onnx model file")]
    Empty,

    #[error(
        "the model file is a Git LFS pointer, not the model itself: run `git lfs pull` \
         (or download the real .onnx file) and build again"
    )]
    GitLfsPointer,

    #[error(
        "not an ONNX model: {detail}; the file may be truncated or in another format \
         (TensorFlow .pb, ORT .ort, PyTorch .pt): export or convert the model to .onnx"
    )]
    NotOnnx { detail: String },

    #[error(
        "the ONNX model's graph has no nodes: there is nothing to run; export the model again \
         and check the export did not fail"
    )]
    EmptyGraph,

    #[error(
        "tensor `{tensor}` keeps its data in the external file `{location}`, but the image \
         ships one self-contained model file: save it with \
         `onnx.save(model, path, save_as_external_data=False)`"
    )]
    ExternalData { tensor: String, location: String },

    #[error(
        "{role} `{name}` is a {kind}, not a tensor; edge-runtime serves tensors only: \
         export the model with plain tensor {role}s"
    )]
    NotATensor {
        role: Role,
        name: String,
        kind: &'static str,
    },

    #[error(
        "{role} `{name}` has element type {elem_type}, which edge-runtime cannot serve \
         (supported: {}); convert it inside the model (e.g. with a Cast node) to one of those",
        join(ElemType::servable())
    )]
    UnsupportedElemType {
        role: Role,
        name: String,
        elem_type: ElemType,
    },

    #[error(
        "the recipe sets `model.inputs.{name}`, but the model has no input named `{name}`{}; \
         its inputs are: {}",
        if *is_weight { " (it is a weight stored in the model, not an input)" } else { "" },
        join(known)
    )]
    UnknownInput {
        name: String,
        known: Vec<String>,
        is_weight: bool,
    },

    #[error(
        "`model.inputs.{name} = {given:?}` has rank {}, but input `{name}` has rank {} ({}): \
         give exactly {} sizes",
        given.len(), model.len(), DimList(model), model.len()
    )]
    WrongRank {
        name: String,
        given: Vec<i64>,
        model: Vec<Dim>,
    },

    #[error(
        "`model.inputs.{name}`: dim {axis} is {given}, but the model fixes it to {fixed} \
         ({}): use {fixed} there",
        DimList(model)
    )]
    ConflictingDim {
        name: String,
        axis: usize,
        given: i64,
        fixed: i64,
        model: Vec<Dim>,
    },

    #[error("`model.inputs.{name} = {given:?}`: dim {axis} is {}; every size must be a positive integer", given[*axis])]
    InvalidDim {
        name: String,
        axis: usize,
        given: Vec<i64>,
    },

    #[error(
        "input `{name}` has a free size at dim {axis} ({} in {}) and the recipe gives no shape \
         for it; set `model.inputs.{name} = {}` in the recipe, with the sizes clients will send \
         in place of the 1s",
        model[*axis], DimList(model), suggest_shape(model)
    )]
    UnsetDim {
        name: String,
        axis: usize,
        model: Vec<Dim>,
    },

    #[error(
        "input `{name}` has no shape in the model; set `model.inputs.{name} = [..]` in the \
         recipe to the exact shape clients will send"
    )]
    NoShape { name: String },

    #[error(
        "dim `{symbol}` is one size shared by several inputs, but it is {first} in \
         `model.inputs.{first_input}` and {second} in `model.inputs.{second_input}`: \
         make them equal"
    )]
    ConflictingSymbol {
        symbol: String,
        first_input: String,
        first: i64,
        second_input: String,
        second: i64,
    },
}

fn join<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let parts: Vec<String> = items.into_iter().map(|item| item.to_string()).collect();
    if parts.is_empty() {
        "(none)".to_string()
    } else {
        parts.join(", ")
    }
}

/// A shape to copy into the recipe: the fixed sizes kept, every free size as 1.
fn suggest_shape(model: &[Dim]) -> String {
    let sizes: Vec<i64> = model.iter().map(|d| d.fixed().unwrap_or(1)).collect();
    format!("{sizes:?}")
}
