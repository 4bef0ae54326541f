//! What a model takes and gives: read from its `ModelProto` without changing it.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::decode::decode_model;
use super::error::{ModelError, Role};
use super::proto::tensor_shape_proto::dimension::Value as DimValue;
use super::proto::type_proto::Value as TypeValue;
use super::proto::{GraphProto, ModelProto, TensorShapeProto, ValueInfoProto};
use super::types::{Dim, DimList, ElemType};

/// A summary of an ONNX model: versions, and the tensors it takes and gives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub ir_version: i64,
    /// Operator sets the model imports; the default ONNX domain is written `ai.onnx`.
    pub opset: Vec<OpsetId>,
    /// Producer name and version, e.g. `pytorch 2.4.0` (empty if the exporter left it out).
    pub producer: String,
    /// The graph's real inputs, in model order (weights listed as inputs are left out).
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpsetId {
    pub domain: String,
    pub version: i64,
}

/// One graph input or output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    /// What kind of value it is; everything but `Tensor` has `elem_type` UNDEFINED, no dims.
    pub kind: ValueKind,
    pub elem_type: ElemType,
    /// The declared shape, or `None` when the model does not even give the rank.
    pub dims: Option<Vec<Dim>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    Tensor,
    SparseTensor,
    Sequence,
    Map,
    Optional,
    Opaque,
    /// The model gives no type at all.
    Untyped,
}

impl ValueKind {
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Tensor => "tensor",
            ValueKind::SparseTensor => "sparse tensor",
            ValueKind::Sequence => "sequence",
            ValueKind::Map => "map",
            ValueKind::Optional => "optional",
            ValueKind::Opaque => "opaque value",
            ValueKind::Untyped => "value without a type",
        }
    }
}

/// Reads an ONNX model's versions, inputs and outputs; fails if the bytes are not an ONNX
/// model or its graph is empty.
pub fn inspect_model(bytes: &[u8]) -> Result<ModelInfo, ModelError> {
    let model = decode_model(bytes)?;
    Ok(model_info(&model))
}

impl ModelInfo {
    /// The version of the default (`ai.onnx`) operator set.
    pub fn onnx_opset(&self) -> Option<i64> {
        self.opset
            .iter()
            .find(|o| o.domain == DEFAULT_DOMAIN)
            .map(|o| o.version)
    }

    pub fn input(&self, name: &str) -> Option<&TensorInfo> {
        self.inputs.iter().find(|t| t.name == name)
    }

    /// Fails unless every input and output is a tensor of a type edge-runtime can serve.
    pub fn check_servable(&self) -> Result<(), ModelError> {
        let sides = [(Role::Input, &self.inputs), (Role::Output, &self.outputs)];
        for (role, values) in sides {
            for value in values.iter() {
                value.check_servable(role)?;
            }
        }
        Ok(())
    }
}

impl TensorInfo {
    /// The shape when every dim is fixed, e.g. after freezing.
    pub fn fixed_shape(&self) -> Option<Vec<i64>> {
        self.dims.as_ref()?.iter().map(Dim::fixed).collect()
    }

    fn check_servable(&self, role: Role) -> Result<(), ModelError> {
        if self.kind != ValueKind::Tensor {
            return Err(ModelError::NotATensor {
                role,
                name: self.name.clone(),
                kind: self.kind.name(),
            });
        }
        if !self.elem_type.is_servable() {
            return Err(ModelError::UnsupportedElemType {
                role,
                name: self.name.clone(),
                elem_type: self.elem_type,
            });
        }
        Ok(())
    }
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.dims) {
            (ValueKind::Tensor, Some(dims)) => {
                write!(f, "{}: {} {}", self.name, self.elem_type, DimList(dims))
            }
            (ValueKind::Tensor, None) => {
                write!(f, "{}: {} [rank unknown]", self.name, self.elem_type)
            }
            (kind, _) => write!(f, "{}: {}", self.name, kind.name()),
        }
    }
}

impl fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opsets: Vec<String> = self
            .opset
            .iter()
            .map(|o| format!("{} {}", o.domain, o.version))
            .collect();
        writeln!(
            f,
            "ONNX IR {}, opsets: {}",
            self.ir_version,
            opsets.join(", ")
        )?;
        if !self.producer.is_empty() {
            writeln!(f, "producer: {}", self.producer)?;
        }
        for input in &self.inputs {
            writeln!(f, "input  {input}")?;
        }
        for output in &self.outputs {
            writeln!(f, "output {output}")?;
        }
        Ok(())
    }
}

const DEFAULT_DOMAIN: &str = "ai.onnx";

pub(super) fn model_info(model: &ModelProto) -> ModelInfo {
    let graph = model.graph.as_ref();
    let producer = format!(
        "{} {}",
        model.producer_name.as_deref().unwrap_or_default(),
        model.producer_version.as_deref().unwrap_or_default()
    );
    ModelInfo {
        ir_version: model.ir_version.unwrap_or_default(),
        opset: model
            .opset_import
            .iter()
            .map(|o| OpsetId {
                domain: match o.domain.as_deref() {
                    None | Some("") => DEFAULT_DOMAIN.to_string(),
                    Some(domain) => domain.to_string(),
                },
                version: o.version.unwrap_or_default(),
            })
            .collect(),
        producer: producer.trim().to_string(),
        inputs: graph
            .map(|g| real_inputs(g).map(tensor_info).collect())
            .unwrap_or_default(),
        outputs: graph
            .map(|g| g.output.iter().map(tensor_info).collect())
            .unwrap_or_default(),
    }
}

/// Graph inputs that are not also initializers: older exporters list every weight as an
/// input too, but those are not something a client sends.
pub(super) fn real_inputs(graph: &GraphProto) -> impl Iterator<Item = &ValueInfoProto> {
    let weights = weight_names(graph);
    graph
        .input
        .iter()
        .filter(move |input| !weights.contains(input.name()))
}

pub(super) fn weight_names(graph: &GraphProto) -> BTreeSet<&str> {
    let dense = graph.initializer.iter().map(|t| t.name());
    let sparse = graph
        .sparse_initializer
        .iter()
        .filter_map(|s| s.values.as_ref())
        .map(|t| t.name());
    dense.chain(sparse).collect()
}

fn tensor_info(value: &ValueInfoProto) -> TensorInfo {
    let name = value.name().to_string();
    let untyped = TensorInfo {
        name: name.clone(),
        kind: ValueKind::Untyped,
        elem_type: ElemType::Undefined,
        dims: None,
    };
    let Some(ty) = value.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return untyped;
    };
    let kind = match ty {
        TypeValue::TensorType(tensor) => {
            return TensorInfo {
                name,
                kind: ValueKind::Tensor,
                elem_type: ElemType::from_onnx(tensor.elem_type.unwrap_or_default()),
                dims: tensor.shape.as_ref().map(dims_of),
            }
        }
        TypeValue::SparseTensorType(_) => ValueKind::SparseTensor,
        TypeValue::SequenceType(_) => ValueKind::Sequence,
        TypeValue::MapType(_) => ValueKind::Map,
        TypeValue::OptionalType(_) => ValueKind::Optional,
        TypeValue::OpaqueType(_) => ValueKind::Opaque,
    };
    TensorInfo { kind, ..untyped }
}

fn dims_of(shape: &TensorShapeProto) -> Vec<Dim> {
    shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(DimValue::DimValue(v)) if *v >= 0 => Dim::Fixed(*v),
            Some(DimValue::DimParam(p)) if !is_placeholder_symbol(p) => Dim::Symbolic(p.clone()),
            _ => Dim::Unknown,
        })
        .collect()
}

/// Names exporters write when they mean "unknown" rather than a shared size (Paddle: `?`).
pub(super) fn is_placeholder_symbol(name: &str) -> bool {
    matches!(name.trim(), "" | "?" | "-1")
}
