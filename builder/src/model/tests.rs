//! Model preparation on the project's small committed models, and on edited copies of them
//! for the cases exporters rarely produce.

use std::collections::BTreeMap;

use prost::Message;

use super::proto::tensor_proto::DataLocation;
use super::proto::tensor_shape_proto::dimension::Value as DimValue;
use super::proto::type_proto::Value as TypeValue;
use super::proto::{ModelProto, StringStringEntryProto, ValueInfoProto};
use super::*;

const TINY_MLP: &[u8] = include_bytes!("../../../tests/models/tiny-mlp.onnx");
const TWO_INPUTS: &[u8] = include_bytes!("../../../tests/models/fixtures/two-inputs.onnx");
const STRING_INPUT: &[u8] = include_bytes!("../../../tests/models/fixtures/string-input.onnx");

fn shapes(entries: &[(&str, &[i64])]) -> BTreeMap<String, Vec<i64>> {
    entries
        .iter()
        .map(|(name, dims)| (name.to_string(), dims.to_vec()))
        .collect()
}

fn edited(bytes: &[u8], edit: impl FnOnce(&mut ModelProto)) -> Vec<u8> {
    let mut model = ModelProto::decode(bytes).unwrap();
    edit(&mut model);
    model.encode_to_vec()
}

fn freeze_err(bytes: &[u8], given: &[(&str, &[i64])]) -> ModelError {
    freeze_model(bytes, &shapes(given)).unwrap_err()
}

fn sym(name: &str) -> Dim {
    Dim::Symbolic(name.to_string())
}

/// Every dim of every declared value in the main graph, as (value name, dims).
fn declared_dims(bytes: &[u8]) -> Vec<(String, Vec<Option<DimValue>>)> {
    let model = ModelProto::decode(bytes).unwrap();
    let graph = model.graph.unwrap();
    let values = graph
        .input
        .iter()
        .chain(&graph.output)
        .chain(&graph.value_info);
    values
        .map(|v: &ValueInfoProto| {
            let Some(TypeValue::TensorType(t)) = v.r#type.as_ref().unwrap().value.as_ref() else {
                panic!("{} is not a tensor", v.name());
            };
            let dims = t
                .shape
                .as_ref()
                .unwrap()
                .dim
                .iter()
                .map(|d| d.value.clone());
            (v.name().to_string(), dims.collect())
        })
        .collect()
}

#[test]
fn inspects_tiny_mlp() {
    let info = inspect_model(TINY_MLP).unwrap();
    assert_eq!(info.ir_version, 8);
    assert_eq!(info.onnx_opset(), Some(13));
    assert_eq!(info.producer, "edgeimg-make-models 1");
    assert_eq!(info.inputs.len(), 1);
    assert_eq!(info.inputs[0].to_string(), "x: FP32 [N, 16]");
    assert_eq!(info.outputs.len(), 1);
    assert_eq!(info.outputs[0].name, "probs");
    assert_eq!(info.outputs[0].elem_type, ElemType::Fp32);
    assert_eq!(info.outputs[0].dims, Some(vec![sym("N"), Dim::Fixed(4)]));
    info.check_servable().unwrap();
}

#[test]
fn freezing_fixes_the_batch_everywhere() {
    let (frozen, info) = freeze_model(TINY_MLP, &shapes(&[("x", &[3, 16])])).unwrap();
    assert_eq!(info.inputs[0].fixed_shape(), Some(vec![3, 16]));
    assert_eq!(info.outputs[0].fixed_shape(), Some(vec![3, 4]));
    assert_eq!(inspect_model(&frozen).unwrap(), info);
    let declared = declared_dims(&frozen);
    assert!(declared.len() > 2, "value_info kept: {declared:?}");
    for (name, dims) in declared {
        assert_eq!(dims[0], Some(DimValue::DimValue(3)), "{name}");
        assert!(
            dims.iter()
                .all(|d| matches!(d, Some(DimValue::DimValue(_)))),
            "{name}"
        );
    }
}

#[test]
fn freezing_keeps_weights_and_nodes() {
    let (frozen, _) = freeze_model(TINY_MLP, &shapes(&[("x", &[1, 16])])).unwrap();
    let before = ModelProto::decode(TINY_MLP).unwrap().graph.unwrap();
    let after = ModelProto::decode(&frozen[..]).unwrap().graph.unwrap();
    assert_eq!(before.initializer, after.initializer);
    assert_eq!(before.node, after.node);
}

#[test]
fn freezing_a_frozen_model_changes_nothing() {
    let (frozen, _) = freeze_model(TINY_MLP, &shapes(&[("x", &[1, 16])])).unwrap();
    let (again, _) = freeze_model(&frozen, &BTreeMap::new()).unwrap();
    assert_eq!(again, frozen);
    let (explicit, _) = freeze_model(&frozen, &shapes(&[("x", &[1, 16])])).unwrap();
    assert_eq!(explicit, frozen);
}

#[test]
fn shared_symbol_binds_all_inputs_and_clears_unbound_ones() {
    let info = inspect_model(TWO_INPUTS).unwrap();
    let names: Vec<&str> = info.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "the weight w is not an input");

    let given = shapes(&[("a", &[2, 8]), ("b", &[2, 8])]);
    let (frozen, info) = freeze_model(TWO_INPUTS, &given).unwrap();
    assert_eq!(
        info.outputs[0].dims,
        Some(vec![Dim::Fixed(2), Dim::Unknown])
    );
    let declared: BTreeMap<_, _> = declared_dims(&frozen).into_iter().collect();
    let fixed = |v: i64| Some(DimValue::DimValue(v));
    assert_eq!(declared["ab"], [fixed(2), fixed(8)]);
    assert_eq!(declared["sum"], [fixed(2), None]);
    assert_eq!(declared["w"], [fixed(8)]);
}

#[test]
fn inputs_disagreeing_on_a_symbol_are_refused() {
    let err = freeze_err(TWO_INPUTS, &[("a", &[1, 8]), ("b", &[2, 8])]);
    assert!(matches!(err, ModelError::ConflictingSymbol { ref symbol, .. } if symbol == "N"));
    assert!(err.to_string().contains("make them equal"), "{err}");
}

#[test]
fn shape_for_a_weight_says_it_is_a_weight() {
    let err = freeze_err(TWO_INPUTS, &[("w", &[8])]);
    assert!(matches!(
        err,
        ModelError::UnknownInput {
            is_weight: true,
            ..
        }
    ));
    let message = err.to_string();
    assert!(message.contains("weight stored in the model"), "{message}");
    assert!(message.contains("its inputs are: a, b"), "{message}");
}

#[test]
fn not_onnx_bytes_are_refused() {
    for bytes in [
        &b"\x89PNG\r\n\x1a\n not a model at all"[..],
        b"hello world\n",
        b"\xff\xff\xff",
    ] {
        let err = inspect_model(bytes).unwrap_err();
        assert!(
            matches!(err, ModelError::NotOnnx { .. }),
            "{bytes:?}: {err:?}"
        );
        assert!(err.to_string().starts_with("not an ONNX model"), "{err}");
    }
    assert!(matches!(inspect_model(b""), Err(ModelError::Empty)));
    let lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 7529\n";
    assert!(matches!(inspect_model(lfs), Err(ModelError::GitLfsPointer)));
}

#[test]
fn truncated_model_is_refused() {
    for len in [1, 10, TINY_MLP.len() / 2, TINY_MLP.len() - 1] {
        let err = inspect_model(&TINY_MLP[..len]).unwrap_err();
        assert!(matches!(err, ModelError::NotOnnx { .. }), "{len}: {err:?}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}

#[test]
fn empty_graph_is_refused() {
    let bytes = edited(TINY_MLP, |m| m.graph.as_mut().unwrap().node.clear());
    assert!(matches!(inspect_model(&bytes), Err(ModelError::EmptyGraph)));
}

#[test]
fn unknown_input_name_lists_the_real_ones() {
    let err = freeze_err(TINY_MLP, &[("image", &[1, 16])]);
    let message = err.to_string();
    assert!(matches!(
        err,
        ModelError::UnknownInput {
            is_weight: false,
            ..
        }
    ));
    assert!(message.contains("no input named `image`"), "{message}");
    assert!(message.contains("its inputs are: x"), "{message}");
}

#[test]
fn wrong_rank_is_refused() {
    let err = freeze_err(TINY_MLP, &[("x", &[1, 4, 4])]);
    assert!(matches!(err, ModelError::WrongRank { .. }));
    let message = err.to_string();
    assert!(
        message.contains("has rank 3, but input `x` has rank 2 ([N, 16])"),
        "{message}"
    );
}

#[test]
fn conflicting_fixed_dim_is_refused() {
    let err = freeze_err(TINY_MLP, &[("x", &[1, 8])]);
    assert!(matches!(
        err,
        ModelError::ConflictingDim {
            axis: 1,
            given: 8,
            fixed: 16,
            ..
        }
    ));
    assert!(err.to_string().contains("use 16 there"), "{err}");
}

#[test]
fn non_positive_sizes_are_refused() {
    for given in [[0, 16], [-1, 16]] {
        let err = freeze_err(TINY_MLP, &[("x", &given)]);
        assert!(
            matches!(err, ModelError::InvalidDim { axis: 0, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn unset_symbolic_dim_names_the_recipe_key() {
    let err = freeze_err(TINY_MLP, &[]);
    assert!(matches!(err, ModelError::UnsetDim { axis: 0, .. }));
    let message = err.to_string();
    assert!(message.contains("dim 0 (N in [N, 16])"), "{message}");
    assert!(message.contains("`model.inputs.x = [1, 16]`"), "{message}");
}

#[test]
fn unsupported_input_type_lists_the_supported_ones() {
    let info = inspect_model(STRING_INPUT).unwrap();
    assert_eq!(info.inputs[0].elem_type, ElemType::String);
    let err = freeze_err(STRING_INPUT, &[("text", &[1])]);
    assert!(matches!(
        err,
        ModelError::UnsupportedElemType {
            role: Role::Input,
            ..
        }
    ));
    let message = err.to_string();
    assert!(
        message.contains("input `text` has element type STRING"),
        "{message}"
    );
    assert!(
        message.contains("FP32") && message.contains("INT64"),
        "{message}"
    );
}

#[test]
fn minus_one_and_question_mark_are_unknown_dims() {
    let bytes = edited(TINY_MLP, |m| {
        let input = &mut m.graph.as_mut().unwrap().input[0];
        let Some(TypeValue::TensorType(t)) = input.r#type.as_mut().unwrap().value.as_mut() else {
            unreachable!()
        };
        let dims = &mut t.shape.as_mut().unwrap().dim;
        dims[0].value = Some(DimValue::DimValue(-1));
        dims[1].value = Some(DimValue::DimParam("?".into()));
    });
    let info = inspect_model(&bytes).unwrap();
    assert_eq!(info.inputs[0].dims, Some(vec![Dim::Unknown, Dim::Unknown]));
    let (_, frozen) = freeze_model(&bytes, &shapes(&[("x", &[2, 16])])).unwrap();
    assert_eq!(frozen.inputs[0].fixed_shape(), Some(vec![2, 16]));
    // N is no longer bound by any input, so the output's N is cleared, not guessed.
    assert_eq!(
        frozen.outputs[0].dims,
        Some(vec![Dim::Unknown, Dim::Fixed(4)])
    );
}

#[test]
fn input_without_shape_needs_one_from_the_recipe() {
    let bytes = edited(TINY_MLP, |m| {
        let input = &mut m.graph.as_mut().unwrap().input[0];
        let Some(TypeValue::TensorType(t)) = input.r#type.as_mut().unwrap().value.as_mut() else {
            unreachable!()
        };
        t.shape = None;
    });
    assert_eq!(inspect_model(&bytes).unwrap().inputs[0].dims, None);
    let err = freeze_err(&bytes, &[]);
    assert!(matches!(err, ModelError::NoShape { .. }), "{err:?}");
    let (_, info) = freeze_model(&bytes, &shapes(&[("x", &[1, 16])])).unwrap();
    assert_eq!(info.inputs[0].fixed_shape(), Some(vec![1, 16]));
}

#[test]
fn external_weights_are_refused() {
    let bytes = edited(TINY_MLP, |m| {
        let weight = &mut m.graph.as_mut().unwrap().initializer[0];
        weight.data_location = Some(DataLocation::External as i32);
        weight.external_data.push(StringStringEntryProto {
            key: Some("location".into()),
            value: Some("weights.bin".into()),
        });
    });
    let err = freeze_err(&bytes, &[("x", &[1, 16])]);
    assert!(matches!(err, ModelError::ExternalData { .. }), "{err:?}");
    assert!(err.to_string().contains("`weights.bin`"), "{err}");
}
