//! Request decoding as the bytes arrive, straight into typed buffers: no tree of the body, no
//! copy of it. Every element is checked against the model's input (its datatype, and its count
//! against the shape) the moment it is read, so a body of millions of elements for a
//! 16-element input is refused at the 17th. What a request holds in memory while decoding is
//! its tensors (allocated once the shape is known) and one parse buffer.

mod binary;
mod events;
mod input;
mod pending;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::task::{Context, Poll, Waker};

use thiserror::Error;

use self::events::{describe, Event, Events};
use self::input::{Claims, InputFields};
use super::source::Prefix;
use super::Source;
use crate::body::ReadError;
use crate::tensor::{Tensor, TensorSpec};

/// Why a request was refused; every case is the client's to fix (HTTP 400).
#[derive(Debug, Error)]
#[error("{0}")]
pub struct RequestError(pub String);

/// A request refused for what it says (400), or for how its body arrived (408, 413, 400).
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("{0}")]
    Invalid(RequestError),
    #[error("{0}")]
    Body(ReadError),
}

fn invalid(message: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(RequestError(message.into()))
}

/// One output the client asked for, and whether it wants it as raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedOutput {
    pub name: String,
    pub binary: bool,
}

#[derive(Debug)]
pub struct DecodedRequest {
    pub id: Option<String>,
    /// In the order the model declares its inputs.
    pub inputs: Vec<Tensor>,
    pub outputs: Vec<RequestedOutput>,
}

/// What is known of a body before reading it.
#[derive(Debug, Clone, Copy)]
pub struct BodySize {
    /// `Inference-Header-Content-Length`: the JSON part's length when binary data follows.
    pub json_len: Option<usize>,
    /// `Content-Length`, when the client sent one.
    pub content_length: Option<usize>,
    /// The most bytes the body may have (`max_body_bytes`).
    pub limit: usize,
}

impl BodySize {
    /// The most bytes the body can have.
    fn bound(&self) -> usize {
        self.content_length.unwrap_or(self.limit).min(self.limit)
    }

    /// The most bytes the JSON part can have.
    fn json_bound(&self) -> usize {
        self.json_len.unwrap_or(self.bound())
    }
}

/// Decodes and validates a request read from `source`.
pub async fn decode_stream<S: Source + Send>(
    source: &mut S,
    size: BodySize,
    inputs: &[TensorSpec],
    outputs: &[TensorSpec],
) -> Result<DecodedRequest, DecodeError> {
    if let (Some(n), Some(total)) = (size.json_len, size.content_length) {
        if n > total {
            return Err(invalid(format!(
                "Inference-Header-Content-Length is {n} but the body has only {total} bytes"
            )));
        }
    }
    let mut request = Request::new(inputs, outputs, size.json_bound());
    {
        let json = Prefix {
            source: &mut *source,
            left: size.json_len.unwrap_or(usize::MAX),
        };
        let mut events = Events::new(json);
        request.read(&mut events).await?;
        let json = events.into_source();
        if json.left > 0 && size.json_len.is_some() {
            return Err(invalid(format!(
                "Inference-Header-Content-Length is {} but the body ended {} bytes before that",
                size.json_len.unwrap_or(0),
                json.left
            )));
        }
    }
    let read_json = size.json_len.unwrap_or(0);
    binary::read_claims(
        source,
        &request.claims,
        &mut request.decoded,
        size.bound().saturating_sub(read_json),
    )
    .await?;
    request.finish()
}

/// Decodes a whole body held in memory (tests, fuzzing); `json_len` as in [`BodySize`].
pub fn decode_request(
    body: &[u8],
    json_len: Option<usize>,
    inputs: &[TensorSpec],
    outputs: &[TensorSpec],
) -> Result<DecodedRequest, RequestError> {
    let mut source = body;
    let size = BodySize {
        json_len,
        content_length: Some(body.len()),
        limit: body.len(),
    };
    let future = decode_stream(&mut source, size, inputs, outputs);
    let mut future = std::pin::pin!(future);
    // A slice never makes the decoder wait: one poll finishes it.
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result.map_err(|e| match e {
            DecodeError::Invalid(e) => e,
            DecodeError::Body(e) => RequestError(e.to_string()),
        }),
        Poll::Pending => unreachable!("reading a slice never waits"),
    }
}

/// A request being read: what the JSON said so far.
struct Request<'m> {
    inputs: &'m [TensorSpec],
    outputs: &'m [TensorSpec],
    json_bound: usize,
    id: Option<String>,
    binary_output: bool,
    seen_inputs: bool,
    /// Per model input, in the model's order.
    decoded: Vec<Option<Tensor>>,
    claims: Claims,
    asked: Option<Vec<RequestedOutput>>,
}

impl<'m> Request<'m> {
    fn new(inputs: &'m [TensorSpec], outputs: &'m [TensorSpec], json_bound: usize) -> Self {
        Request {
            inputs,
            outputs,
            json_bound,
            id: None,
            binary_output: false,
            seen_inputs: false,
            decoded: vec![None; inputs.len()],
            claims: Claims::default(),
            asked: None,
        }
    }

    async fn read<S: Source + Send>(&mut self, events: &mut Events<S>) -> Result<(), DecodeError> {
        let first = events.next().await?;
        if first != Event::StartObject {
            return Err(invalid(format!(
                "request is not a valid inference request: it is {}, not a JSON object with \"inputs\"",
                describe(first, events.text())
            )));
        }
        while let Some(key) = next_key(events).await? {
            match key.as_str() {
                "id" => match events.next().await? {
                    Event::Str => self.id = Some(events.text().to_string()),
                    Event::Null => self.id = None,
                    other => return Err(events.unexpected(other, "request 'id'", "a string")),
                },
                "parameters" => {
                    self.binary_output =
                        read_flag(events, "parameters", "binary_data_output").await?;
                }
                "inputs" => {
                    if std::mem::replace(&mut self.seen_inputs, true) {
                        return Err(invalid("request has \"inputs\" twice"));
                    }
                    self.read_inputs(events).await?;
                }
                "outputs" => {
                    if self.asked.is_some() {
                        return Err(invalid("request has \"outputs\" twice"));
                    }
                    self.asked = Some(self.read_outputs(events).await?);
                }
                _ => events.skip_next().await?,
            }
        }
        match events.next().await? {
            Event::Eof => Ok(()),
            other => Err(invalid(format!(
                "request is not a valid inference request: invalid JSON: {} follows the request object",
                describe(other, events.text())
            ))),
        }
    }

    async fn read_inputs<S: Source + Send>(
        &mut self,
        events: &mut Events<S>,
    ) -> Result<(), DecodeError> {
        events.expect(Event::StartArray, "\"inputs\"").await?;
        let mut position = 0;
        loop {
            match events.next().await? {
                Event::EndArray => return Ok(()),
                Event::StartObject => {
                    let fields =
                        InputFields::read(events, position, self.inputs, self.json_bound).await?;
                    fields.place(self.inputs, &mut self.decoded, &mut self.claims)?;
                    position += 1;
                }
                other => return Err(events.unexpected(other, "each of \"inputs\"", "an object")),
            }
        }
    }

    async fn read_outputs<S: Source + Send>(
        &mut self,
        events: &mut Events<S>,
    ) -> Result<Vec<RequestedOutput>, DecodeError> {
        events.expect(Event::StartArray, "\"outputs\"").await?;
        let mut asked = Vec::new();
        loop {
            match events.next().await? {
                Event::EndArray => return Ok(asked),
                Event::StartObject => {
                    let mut name = None;
                    let mut binary = false;
                    while let Some(key) = next_key(events).await? {
                        match key.as_str() {
                            "name" => name = Some(read_string(events, "an output's name").await?),
                            "parameters" => {
                                binary = read_flag(events, "an output's parameters", "binary_data")
                                    .await?
                            }
                            _ => events.skip_next().await?,
                        }
                    }
                    let name =
                        name.ok_or_else(|| invalid("an entry of \"outputs\" has no \"name\""))?;
                    if !self.outputs.iter().any(|s| s.name == name) {
                        return Err(invalid(format!(
                            "unknown output '{name}'; the model's outputs are {}",
                            names(self.outputs)
                        )));
                    }
                    asked.push(RequestedOutput { name, binary });
                }
                other => return Err(events.unexpected(other, "each of \"outputs\"", "an object")),
            }
        }
    }

    fn finish(self) -> Result<DecodedRequest, DecodeError> {
        if !self.seen_inputs {
            return Err(invalid(
                "request is not a valid inference request: it has no \"inputs\"",
            ));
        }
        let missing: Vec<&str> = self
            .inputs
            .iter()
            .zip(&self.decoded)
            .filter(|(_, d)| d.is_none())
            .map(|(s, _)| s.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(invalid(format!(
                "missing input(s) {missing:?}; the model's inputs are {}",
                names(self.inputs)
            )));
        }
        let all_binary = self.binary_output;
        let outputs = match self.asked {
            None => self
                .outputs
                .iter()
                .map(|s| RequestedOutput {
                    name: s.name.clone(),
                    binary: all_binary,
                })
                .collect(),
            Some(asked) => asked
                .into_iter()
                .map(|o| RequestedOutput {
                    binary: all_binary || o.binary,
                    ..o
                })
                .collect(),
        };
        Ok(DecodedRequest {
            id: self.id,
            inputs: self.decoded.into_iter().flatten().collect(),
            outputs,
        })
    }
}

fn names(specs: &[TensorSpec]) -> String {
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    format!("{names:?}")
}

/// The next key of the object being read, or `None` at its end.
async fn next_key<S: Source + Send>(events: &mut Events<S>) -> Result<Option<String>, DecodeError> {
    match events.next().await? {
        Event::Key => Ok(Some(events.text().to_string())),
        Event::EndObject => Ok(None),
        other => Err(invalid(format!(
            "request is not a valid inference request: invalid JSON: {} where a key belongs",
            describe(other, events.text())
        ))),
    }
}

async fn read_string<S: Source + Send>(
    events: &mut Events<S>,
    what: &str,
) -> Result<String, DecodeError> {
    match events.next().await? {
        Event::Str => Ok(events.text().to_string()),
        other => Err(events.unexpected(other, what, "a string")),
    }
}

/// A `parameters` object: the boolean `flag` in it (false when absent or not a boolean, as
/// Triton reads it); everything else is skipped.
async fn read_flag<S: Source + Send>(
    events: &mut Events<S>,
    what: &str,
    flag: &str,
) -> Result<bool, DecodeError> {
    events.expect(Event::StartObject, what).await?;
    let mut value = false;
    while let Some(key) = next_key(events).await? {
        let event = events.next().await?;
        if key == flag {
            value = event == Event::Bool(true);
        }
        events.skip_value(event).await?;
    }
    Ok(value)
}
