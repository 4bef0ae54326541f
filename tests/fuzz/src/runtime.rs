//! edge-runtime's request decoder on hostile bodies: it accepts a request only when every input
//! matches the model, and refuses anything else with an error, never a panic or an allocation
//! the body cannot back. Shared by the fuzz target and `runtime/server/tests/fuzz_corpus.rs`.

use edge_runtime::protocol::decode_request;
use edge_runtime::tensor::{DataType, TensorSpec};

/// The first byte picks the form of the rest: bit 0 clear, the body is JSON alone; set, the next
/// two bytes (u16 LE) are the `Inference-Header-Content-Length` and binary tensor data follows
/// the JSON. Bit 1 set: the model has only its first input. Bit 2 set: that input is BYTES
/// (strings, each binary element after its 4-byte length) instead of FP32.
pub fn request(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (body, json_len) = match (mode & 1, rest) {
        (0, body) => (body, None),
        (_, [a, b, body @ ..]) => (body, Some(usize::from(u16::from_le_bytes([*a, *b])))),
        _ => return,
    };
    let (mut inputs, outputs) = specs();
    if mode & 4 != 0 {
        inputs[0].datatype = DataType::Bytes;
    }
    if mode & 2 != 0 {
        inputs.truncate(1);
    }
    let Ok(request) = decode_request(body, json_len, &inputs, &outputs) else {
        return;
    };
    assert_eq!(request.inputs.len(), inputs.len());
    for (tensor, spec) in request.inputs.iter().zip(&inputs) {
        assert_eq!(tensor.name, spec.name);
        assert_eq!(tensor.data.datatype(), spec.datatype);
        assert_eq!(spec.shape_mismatch(&tensor.shape), None);
        assert_eq!(tensor.data.len(), tensor.shape.iter().product::<usize>());
    }
    for output in &request.outputs {
        assert!(outputs.iter().any(|s| s.name == output.name), "{output:?}");
    }
}

/// A model like the ones served: a batch of FP32 features, token ids with two open dims, a fixed
/// BOOL mask; two outputs.
fn specs() -> (Vec<TensorSpec>, Vec<TensorSpec>) {
    let spec = |name: &str, datatype, shape: &[i64]| TensorSpec {
        name: name.into(),
        datatype,
        shape: shape.to_vec(),
    };
    let inputs = vec![
        spec("x", DataType::Fp32, &[-1, 16]),
        spec("ids", DataType::Int64, &[-1, -1]),
        spec("mask", DataType::Bool, &[2, 2]),
    ];
    let outputs = vec![
        spec("y", DataType::Fp32, &[-1, 4]),
        spec("labels", DataType::Uint8, &[-1]),
    ];
    (inputs, outputs)
}
