//! Bytes -> ONNX `ModelProto`, telling "not a model at all" apart from "a broken model".

use prost::Message;

use super::error::ModelError;
use super::proto::ModelProto;

const GIT_LFS_POINTER: &[u8] = b"version https://git-lfs.github.com/spec/";

pub fn decode_model(bytes: &[u8]) -> Result<ModelProto, ModelError> {
    if bytes.is_empty() {
        return Err(ModelError::Empty);
    }
    if bytes.starts_with(GIT_LFS_POINTER) {
        return Err(ModelError::GitLfsPointer);
    }
    let model = ModelProto::decode(bytes).map_err(|e| ModelError::NotOnnx {
        detail: format!("the protobuf does not parse ({e})"),
    })?;
    // Protobuf skips unknown fields, so arbitrary bytes can parse as an empty message: a real
    // model always has an IR version and a graph.
    if model.ir_version.is_none() {
        return Err(ModelError::NotOnnx {
            detail: "the file has no ONNX IR version".to_string(),
        });
    }
    match &model.graph {
        None => Err(ModelError::NotOnnx {
            detail: "the file has no graph".to_string(),
        }),
        Some(graph) if graph.node.is_empty() => Err(ModelError::EmptyGraph),
        Some(_) => Ok(model),
    }
}
