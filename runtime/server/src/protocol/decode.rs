//! Request decoding with typed validation against the model's declared inputs.

use serde_json::Value;
use thiserror::Error;

use super::{flag, InferRequest, RequestInput};
use crate::element::Element;
use crate::tensor::{DataType, Tensor, TensorSpec};
use crate::with_element_type;

/// Why a request was refused; every case is the client's to fix (HTTP 400).
#[derive(Debug, Error)]
#[error("{0}")]
pub struct RequestError(pub String);

fn invalid(message: impl Into<String>) -> RequestError {
    RequestError(message.into())
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

/// Parses and validates a request body. `json_len` is the `Inference-Header-Content-Length`
/// value when the binary extension is used.
pub fn decode_request(
    body: &[u8],
    json_len: Option<usize>,
    inputs: &[TensorSpec],
    outputs: &[TensorSpec],
) -> Result<DecodedRequest, RequestError> {
    let (json, mut binary) = match json_len {
        Some(n) if n > body.len() => {
            return Err(invalid(format!(
                "Inference-Header-Content-Length is {n} but the body has only {} bytes",
                body.len()
            )))
        }
        Some(n) => body.split_at(n),
        None => (body, &[][..]),
    };
    let request: InferRequest = serde_json::from_slice(json)
        .map_err(|e| invalid(format!("request is not a valid inference request: {e}")))?;

    let mut decoded: Vec<Option<Tensor>> = vec![None; inputs.len()];
    for input in &request.inputs {
        let index = inputs
            .iter()
            .position(|s| s.name == input.name)
            .ok_or_else(|| {
                invalid(format!(
                    "unknown input '{}'; the model's inputs are {}",
                    input.name,
                    names(inputs)
                ))
            })?;
        if decoded[index].is_some() {
            return Err(invalid(format!("input '{}' is given twice", input.name)));
        }
        decoded[index] = Some(decode_input(
            input,
            &inputs[index],
            json.len(),
            &mut binary,
        )?);
    }
    if !binary.is_empty() {
        return Err(invalid(format!(
            "{} bytes of binary data follow the JSON header but no input claims them \
             (set parameters.binary_data_size on each binary input)",
            binary.len()
        )));
    }
    let missing: Vec<&str> = inputs
        .iter()
        .zip(&decoded)
        .filter(|(_, d)| d.is_none())
        .map(|(s, _)| s.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "missing input(s) {missing:?}; the model's inputs are {}",
            names(inputs)
        )));
    }

    let all_binary = flag(&request.parameters, "binary_data_output");
    let outputs = match &request.outputs {
        None => outputs
            .iter()
            .map(|s| RequestedOutput {
                name: s.name.clone(),
                binary: all_binary,
            })
            .collect(),
        Some(asked) => asked
            .iter()
            .map(|o| {
                if outputs.iter().any(|s| s.name == o.name) {
                    Ok(RequestedOutput {
                        name: o.name.clone(),
                        binary: all_binary || flag(&o.parameters, "binary_data"),
                    })
                } else {
                    Err(invalid(format!(
                        "unknown output '{}'; the model's outputs are {}",
                        o.name,
                        names(outputs)
                    )))
                }
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(DecodedRequest {
        id: request.id,
        inputs: decoded.into_iter().flatten().collect(),
        outputs,
    })
}

fn names(specs: &[TensorSpec]) -> String {
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    format!("{names:?}")
}

fn decode_input(
    input: &RequestInput,
    spec: &TensorSpec,
    json_len: usize,
    binary: &mut &[u8],
) -> Result<Tensor, RequestError> {
    let datatype = DataType::from_name(&input.datatype).ok_or_else(|| {
        let known: Vec<&str> = DataType::ALL.iter().map(|d| d.name()).collect();
        invalid(format!(
            "input '{}' has datatype '{}', which this server does not support (supported: {known:?})",
            input.name, input.datatype
        ))
    })?;
    if datatype != spec.datatype {
        return Err(invalid(format!(
            "input '{}' has datatype {datatype}, the model expects {}",
            input.name, spec.datatype
        )));
    }
    let shape = input
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| invalid(format!("input '{}' has a dimension too large", input.name)))?;
    if let Some(why) = spec.shape_mismatch(&shape) {
        return Err(invalid(why));
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| invalid(format!("input '{}' has too many elements", input.name)))?;

    let data = match input.parameters.get("binary_data_size") {
        Some(size) => {
            let size = size
                .as_u64()
                .and_then(|s| usize::try_from(s).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "input '{}': binary_data_size must be a byte count",
                        input.name
                    ))
                })?;
            let bytes = take_binary(binary, size, &input.name)?;
            let want = count.saturating_mul(datatype.byte_size());
            if size != want {
                return Err(invalid(format!(
                    "input '{}' has {size} bytes of binary data, shape {shape:?} of {datatype} needs {want}",
                    input.name
                )));
            }
            with_element_type!(datatype, T => T::into_data(bytes.chunks_exact(datatype.byte_size()).map(T::read_le).collect()))
        }
        None => {
            let json = input.data.as_ref().ok_or_else(|| {
                invalid(format!(
                    "input '{}' has neither 'data' nor parameters.binary_data_size",
                    input.name
                ))
            })?;
            // The shape is the client's claim: each JSON element takes at least a byte, so a
            // count beyond the body's length is refused before room is made for it.
            if count > json_len {
                return Err(invalid(format!(
                    "input '{}' has shape {shape:?} ({count} elements), more than a {json_len}-byte JSON body can hold",
                    input.name
                )));
            }
            with_element_type!(datatype, T => T::into_data(flatten::<T>(json, &input.name, count)?))
        }
    };
    if data.len() != count {
        return Err(invalid(format!(
            "input '{}' has {} elements in 'data', shape {shape:?} needs {count}",
            input.name,
            data.len()
        )));
    }
    Ok(Tensor {
        name: input.name.clone(),
        shape,
        data,
    })
}

fn take_binary<'b>(
    binary: &mut &'b [u8],
    size: usize,
    name: &str,
) -> Result<&'b [u8], RequestError> {
    if size > binary.len() {
        return Err(invalid(format!(
            "input '{name}' claims {size} bytes of binary data but only {} remain in the body",
            binary.len()
        )));
    }
    let (head, rest) = binary.split_at(size);
    *binary = rest;
    Ok(head)
}

/// Row-major `data`, flat or nested to any depth, into a typed vector.
fn flatten<T: Element>(json: &Value, name: &str, expected: usize) -> Result<Vec<T>, RequestError> {
    let mut out = Vec::with_capacity(expected);
    let mut stack = vec![json];
    // An explicit stack (not recursion): deeply nested hostile input cannot overflow ours.
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items.iter().rev()),
            scalar => out.push(T::from_json(scalar).ok_or_else(|| {
                invalid(format!(
                    "input '{name}': element {} is {scalar}, not a {} value",
                    out.len(),
                    T::DATATYPE
                ))
            })?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorData;

    fn specs() -> (Vec<TensorSpec>, Vec<TensorSpec>) {
        let spec = |name: &str, datatype, shape: Vec<i64>| TensorSpec {
            name: name.into(),
            datatype,
            shape,
        };
        (
            vec![
                spec("a", DataType::Fp32, vec![-1, 2]),
                spec("b", DataType::Int64, vec![2]),
            ],
            vec![spec("y", DataType::Fp32, vec![-1, 2])],
        )
    }

    fn decode(body: &str) -> Result<DecodedRequest, String> {
        let (i, o) = specs();
        decode_request(body.as_bytes(), None, &i, &o).map_err(|e| e.to_string())
    }

    #[test]
    fn nested_and_flat_data_decode_in_model_order() {
        let r = decode(
            r#"{"inputs":[{"name":"b","shape":[2],"datatype":"INT64","data":[1,2]},
                {"name":"a","shape":[1,2],"datatype":"FP32","data":[[0.5,1]]}]}"#,
        )
        .unwrap();
        assert_eq!(r.inputs[0].data, TensorData::Fp32(vec![0.5, 1.0]));
        assert_eq!(r.inputs[1].data, TensorData::Int64(vec![1, 2]));
        assert_eq!(r.outputs[0].name, "y");
    }

    #[test]
    fn each_bad_input_is_named() {
        let base = r#"{"name":"b","shape":[2],"datatype":"INT64","data":[1,2]}"#;
        let with = |a: &str| decode(&format!(r#"{{"inputs":[{a},{base}]}}"#)).unwrap_err();
        assert!(
            with(r#"{"name":"c","shape":[1,2],"datatype":"FP32","data":[1,2]}"#)
                .contains("unknown input 'c'")
        );
        assert!(
            with(r#"{"name":"a","shape":[1,2],"datatype":"INT32","data":[1,2]}"#)
                .contains("model expects FP32")
        );
        assert!(
            with(r#"{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]}"#)
                .contains("shape [1, 3]")
        );
        assert!(
            with(r#"{"name":"a","shape":[1,2],"datatype":"FP32","data":[1,2,3]}"#)
                .contains("3 elements")
        );
        assert!(
            with(r#"{"name":"a","shape":[1,2],"datatype":"FP32","data":[1,"x"]}"#)
                .contains("element 1")
        );
        assert!(decode(&format!(r#"{{"inputs":[{base}]}}"#))
            .unwrap_err()
            .contains("missing input"));
    }

    #[test]
    fn a_shape_larger_than_the_body_is_refused_before_allocating() {
        // 2^58 x 16 FP32 elements would be a 2^64-byte buffer.
        let (i, o) = specs();
        let i = &i[..1];
        let body = r#"{"inputs":[{"name":"a","shape":[288230376151711744,2],"datatype":"FP32","data":[1]}]}"#;
        let err = decode_request(body.as_bytes(), None, i, &o).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("input 'a' has shape [288230376151711744, 2] (576460752303423488 elements), more than a {}-byte JSON body can hold", body.len())
        );
    }

    #[test]
    fn binary_inputs_are_sliced_from_the_tail() {
        let json = r#"{"inputs":[{"name":"a","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}},
            {"name":"b","shape":[2],"datatype":"INT64","data":[3,4]}],"parameters":{"binary_data_output":true}}"#;
        let mut body = json.as_bytes().to_vec();
        body.extend_from_slice(&1.5f32.to_le_bytes());
        body.extend_from_slice(&(-2f32).to_le_bytes());
        let (i, o) = specs();
        let r = decode_request(&body, Some(json.len()), &i, &o).unwrap();
        assert_eq!(r.inputs[0].data, TensorData::Fp32(vec![1.5, -2.0]));
        assert!(r.outputs[0].binary);
        body.push(0);
        assert!(decode_request(&body, Some(json.len()), &i, &o).is_err());
    }
}
