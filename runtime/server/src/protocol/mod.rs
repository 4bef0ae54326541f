//! The Open Inference Protocol v2 wire format: JSON bodies, optionally followed by raw tensor
//! bytes (the binary tensor data extension, announced by `Inference-Header-Content-Length`).
//! Requests are decoded as their bytes arrive, straight into typed buffers.

mod decode;
mod encode;
mod source;

pub use decode::{
    decode_request, decode_stream, BodySize, DecodeError, DecodedRequest, RequestError,
    RequestedOutput,
};
pub use encode::{encode_response, EncodedResponse};
pub use source::Source;

/// The header that says how many leading body bytes are JSON; the rest is binary tensor data.
pub const HEADER_CONTENT_LENGTH: &str = "inference-header-content-length";
