//! Freezing: every real input gets the concrete shape the recipe gives (or the one the model
//! already fixes), so tract can plan the graph and ONNX Runtime can optimise for it.

use std::collections::BTreeMap;

use prost::Message;

use super::decode::decode_model;
use super::error::ModelError;
use super::external::check_self_contained;
use super::info::{model_info, weight_names, ModelInfo, TensorInfo};
use super::proto::tensor_shape_proto::dimension::Value as DimValue;
use super::proto::tensor_shape_proto::Dimension;
use super::proto::type_proto::Value as TypeValue;
use super::proto::GraphProto;
use super::settle::{settle_model_dims, Bindings};
use super::types::Dim;

/// Rewrites the model so every real input has a fixed shape: `shapes` maps input names to
/// sizes (the recipe's `model.inputs.<name> = [..]`); inputs whose shape the model already
/// fixes may be left out. Symbols the inputs fix (e.g. batch `N` = 1) are fixed everywhere
/// else in the model too, and other free dims of outputs and intermediate values are cleared.
/// Returns the new model file and its summary.
pub fn freeze_model(
    bytes: &[u8],
    shapes: &BTreeMap<String, Vec<i64>>,
) -> Result<(Vec<u8>, ModelInfo), ModelError> {
    let mut model = decode_model(bytes)?;
    let before = model_info(&model);
    before.check_servable()?;
    check_self_contained(&model)?;
    let Some(graph) = model.graph.as_mut() else {
        unreachable!("decode_model only returns models with a graph")
    };
    check_names(&before, graph, shapes)?;

    let frozen: Vec<(&TensorInfo, Vec<i64>)> = before
        .inputs
        .iter()
        .map(|input| Ok((input, frozen_shape(input, shapes.get(&input.name))?)))
        .collect::<Result<_, ModelError>>()?;
    let bindings = bind_symbols(&frozen)?;
    for (input, sizes) in &frozen {
        set_input_shape(graph, &input.name, sizes);
    }
    settle_model_dims(&mut model, &bindings);

    let info = model_info(&model);
    Ok((model.encode_to_vec(), info))
}

fn check_names(
    info: &ModelInfo,
    graph: &GraphProto,
    shapes: &BTreeMap<String, Vec<i64>>,
) -> Result<(), ModelError> {
    let weights = weight_names(graph);
    match shapes.keys().find(|name| info.input(name).is_none()) {
        None => Ok(()),
        Some(name) => Err(ModelError::UnknownInput {
            name: name.clone(),
            known: info.inputs.iter().map(|i| i.name.clone()).collect(),
            is_weight: weights.contains(name.as_str()),
        }),
    }
}

/// The concrete shape one input gets, or why the recipe's shape does not fit the model.
fn frozen_shape(input: &TensorInfo, given: Option<&Vec<i64>>) -> Result<Vec<i64>, ModelError> {
    let name = input.name.clone();
    if let Some(given) = given {
        if let Some(axis) = given.iter().position(|&size| size <= 0) {
            let given = given.clone();
            return Err(ModelError::InvalidDim { name, axis, given });
        }
    }
    let Some(model) = &input.dims else {
        return given.cloned().ok_or(ModelError::NoShape { name });
    };
    let Some(given) = given else {
        return match model.iter().position(|d| d.fixed().is_none()) {
            Some(axis) => Err(ModelError::UnsetDim {
                name,
                axis,
                model: model.clone(),
            }),
            None => Ok(model.iter().filter_map(Dim::fixed).collect()),
        };
    };
    if given.len() != model.len() {
        let (given, model) = (given.clone(), model.clone());
        return Err(ModelError::WrongRank { name, given, model });
    }
    for (axis, (dim, &size)) in model.iter().zip(given).enumerate() {
        if let Some(fixed) = dim.fixed().filter(|&fixed| fixed != size) {
            let model = model.clone();
            return Err(ModelError::ConflictingDim {
                name,
                axis,
                given: size,
                fixed,
                model,
            });
        }
    }
    Ok(given.clone())
}

/// Each symbol an input declares takes that input's size; two inputs must agree on it.
fn bind_symbols(frozen: &[(&TensorInfo, Vec<i64>)]) -> Result<Bindings, ModelError> {
    let mut bindings = Bindings::new();
    let mut bound_by: BTreeMap<&str, &str> = BTreeMap::new();
    for (input, sizes) in frozen {
        let dims = input.dims.iter().flatten();
        for (dim, &size) in dims.zip(sizes) {
            let Dim::Symbolic(symbol) = dim else { continue };
            match bindings.get(symbol) {
                Some(&first) if first != size => {
                    return Err(ModelError::ConflictingSymbol {
                        symbol: symbol.clone(),
                        first_input: bound_by[symbol.as_str()].to_string(),
                        first,
                        second_input: input.name.clone(),
                        second: size,
                    })
                }
                Some(_) => {}
                None => {
                    bindings.insert(symbol.clone(), size);
                    bound_by.insert(symbol, &input.name);
                }
            }
        }
    }
    Ok(bindings)
}

fn set_input_shape(graph: &mut GraphProto, name: &str, sizes: &[i64]) {
    let input = graph.input.iter_mut().find(|i| i.name() == name);
    let Some(TypeValue::TensorType(tensor)) = input
        .and_then(|i| i.r#type.as_mut())
        .and_then(|t| t.value.as_mut())
    else {
        unreachable!("check_servable only passes tensor inputs")
    };
    let shape = tensor.shape.get_or_insert_with(Default::default);
    // Keep per-dim denotations (e.g. DATA_BATCH) where the model declared the same rank.
    if shape.dim.len() != sizes.len() {
        shape.dim = vec![Dimension::default(); sizes.len()];
    }
    for (dim, &size) in shape.dim.iter_mut().zip(sizes) {
        dim.value = Some(DimValue::DimValue(size));
    }
}
