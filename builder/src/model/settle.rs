//! After the inputs are frozen, every other declared shape in the model (outputs, value_info,
//! subgraphs, functions) must agree: a symbol an input fixed becomes that size, and any other
//! symbolic or negative dim is cleared to "unknown", which tract and ONNX Runtime infer.

use std::collections::BTreeMap;

use super::proto::tensor_shape_proto::dimension::Value as DimValue;
use super::proto::tensor_shape_proto::Dimension;
use super::proto::type_proto::Value as TypeValue;
use super::proto::{AttributeProto, GraphProto, ModelProto, TypeProto, ValueInfoProto};

/// Symbol name -> the size the frozen inputs gave it.
pub type Bindings = BTreeMap<String, i64>;

pub fn settle_model_dims(model: &mut ModelProto, bindings: &Bindings) {
    if let Some(graph) = model.graph.as_mut() {
        settle_graph(graph, bindings);
    }
    for function in &mut model.functions {
        settle_values(&mut function.value_info, bindings);
        for node in &mut function.node {
            settle_attributes(&mut node.attribute, bindings);
        }
    }
}

fn settle_graph(graph: &mut GraphProto, bindings: &Bindings) {
    settle_values(&mut graph.input, bindings);
    settle_values(&mut graph.output, bindings);
    settle_values(&mut graph.value_info, bindings);
    for node in &mut graph.node {
        settle_attributes(&mut node.attribute, bindings);
    }
}

fn settle_attributes(attributes: &mut [AttributeProto], bindings: &Bindings) {
    for attribute in attributes {
        for graph in attribute.g.iter_mut().chain(attribute.graphs.iter_mut()) {
            settle_graph(graph, bindings);
        }
    }
}

fn settle_values(values: &mut [ValueInfoProto], bindings: &Bindings) {
    for value in values {
        if let Some(ty) = value.r#type.as_mut() {
            settle_type(ty, bindings);
        }
    }
}

fn settle_type(ty: &mut TypeProto, bindings: &Bindings) {
    let (shape, inner) = match ty.value.as_mut() {
        Some(TypeValue::TensorType(t)) => (t.shape.as_mut(), None),
        Some(TypeValue::SparseTensorType(t)) => (t.shape.as_mut(), None),
        Some(TypeValue::SequenceType(s)) => (None, s.elem_type.as_deref_mut()),
        Some(TypeValue::MapType(m)) => (None, m.value_type.as_deref_mut()),
        Some(TypeValue::OptionalType(o)) => (None, o.elem_type.as_deref_mut()),
        Some(TypeValue::OpaqueType(_)) | None => (None, None),
    };
    for dim in shape.into_iter().flat_map(|s| s.dim.iter_mut()) {
        settle_dim(dim, bindings);
    }
    if let Some(inner) = inner {
        settle_type(inner, bindings);
    }
}

fn settle_dim(dim: &mut Dimension, bindings: &Bindings) {
    dim.value = match dim.value.take() {
        Some(DimValue::DimParam(symbol)) => bindings.get(&symbol).copied().map(DimValue::DimValue),
        Some(DimValue::DimValue(size)) if size < 0 => None,
        kept => kept,
    };
}
