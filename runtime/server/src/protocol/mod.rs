//! The Open Inference Protocol v2 wire format: JSON bodies, optionally followed by raw tensor
//! bytes (the binary tensor data extension, announced by `Inference-Header-Content-Length`).

mod decode;
mod encode;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use decode::{decode_request, DecodedRequest, RequestError, RequestedOutput};
pub use encode::{encode_response, EncodedResponse};

/// The header that says how many leading body bytes are JSON; the rest is binary tensor data.
pub const HEADER_CONTENT_LENGTH: &str = "inference-header-content-length";

#[derive(Debug, Deserialize)]
struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<RequestInput>,
    #[serde(default)]
    outputs: Option<Vec<RequestOutputSpec>>,
}

#[derive(Debug, Deserialize)]
struct RequestInput {
    name: String,
    shape: Vec<u64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RequestOutputSpec {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

fn flag(parameters: &Map<String, Value>, key: &str) -> bool {
    parameters
        .get(key)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}
