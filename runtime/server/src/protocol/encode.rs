//! Response encoding: JSON outputs, or raw bytes after the JSON for outputs asked as binary.

use serde::Serialize;
use serde_json::json;

use super::RequestedOutput;
use crate::tensor::{DataType, Tensor, TensorData};

#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<ResponseOutput<'a>>,
}

#[derive(Serialize)]
struct ResponseOutput<'a> {
    name: &'a str,
    datatype: DataType,
    shape: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a TensorData>,
}

/// A response body; `json_len` is set when binary tensor data follows the JSON.
pub struct EncodedResponse {
    pub body: Vec<u8>,
    pub json_len: Option<usize>,
}

/// Encodes the requested outputs in the order asked. `tensors` holds every output the engine
/// produced; a requested name is always among them (decoding checked it against the model).
pub fn encode_response(
    model_name: &str,
    model_version: &str,
    id: Option<&str>,
    requested: &[RequestedOutput],
    tensors: &[Tensor],
) -> EncodedResponse {
    // The tensors whose bytes follow the JSON, in order; written once, straight into the body.
    let mut binary: Vec<&TensorData> = Vec::new();
    let outputs = requested
        .iter()
        .filter_map(|r| tensors.iter().find(|t| t.name == r.name).map(|t| (r, t)))
        .map(|(r, t)| {
            let (parameters, data) = if r.binary {
                binary.push(&t.data);
                (Some(json!({ "binary_data_size": t.data.le_len() })), None)
            } else {
                (None, Some(&t.data))
            };
            ResponseOutput {
                name: &t.name,
                datatype: t.data.datatype(),
                shape: &t.shape,
                parameters,
                data,
            }
        })
        .collect();
    let response = InferResponse {
        model_name,
        model_version,
        id,
        outputs,
    };
    let mut body = serde_json::to_vec(&response).expect("response types always serialise");
    let json_len = (!binary.is_empty()).then_some(body.len());
    body.reserve_exact(binary.iter().map(|d| d.le_len()).sum());
    for data in binary {
        data.write_le(&mut body);
    }
    EncodedResponse { body, json_len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_outputs_follow_the_json() {
        let tensors = vec![
            Tensor {
                name: "y".into(),
                shape: vec![2],
                data: TensorData::Fp32(vec![1.0, 2.0]),
            },
            Tensor {
                name: "m".into(),
                shape: vec![1],
                data: TensorData::Bool(vec![true]),
            },
        ];
        let asked = [
            RequestedOutput {
                name: "m".into(),
                binary: false,
            },
            RequestedOutput {
                name: "y".into(),
                binary: true,
            },
        ];
        let r = encode_response("small", "1", Some("r1"), &asked, &tensors);
        let n = r.json_len.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&r.body[..n]).unwrap();
        assert_eq!(json["id"], "r1");
        assert_eq!(json["outputs"][0]["data"], json!([true]));
        assert_eq!(json["outputs"][1]["parameters"]["binary_data_size"], 8);
        assert_eq!(&r.body[n..n + 4], &1.0f32.to_le_bytes());
    }
}
