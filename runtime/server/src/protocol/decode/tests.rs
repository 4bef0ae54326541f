//! The decoder on whole bodies and on bodies that arrive a byte at a time.

use super::*;
use crate::tensor::{DataType, TensorData};

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
    let body =
        r#"{"inputs":[{"name":"a","shape":[288230376151711744,2],"datatype":"FP32","data":[1]}]}"#;
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

/// A body that arrives `step` bytes at a time, counting what was read.
struct Trickle<'a> {
    rest: &'a [u8],
    step: usize,
    read: usize,
}

impl Source for Trickle<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        let n = buf.len().min(self.step).min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        self.read += n;
        Ok(n)
    }

    async fn read_chunk(&mut self, max: usize) -> Result<&[u8], ReadError> {
        let (chunk, rest) = self.rest.split_at(max.min(self.step).min(self.rest.len()));
        self.rest = rest;
        self.read += chunk.len();
        Ok(chunk)
    }
}

fn decode_trickled(
    body: &[u8],
    step: usize,
    json_len: Option<usize>,
) -> (Result<DecodedRequest, String>, usize) {
    let (i, o) = specs();
    decode_trickled_for(&i, &o, body, step, json_len)
}

/// `body` for a model with inputs `i` and outputs `o`, arriving `step` bytes at a time.
fn decode_trickled_for(
    i: &[TensorSpec],
    o: &[TensorSpec],
    body: &[u8],
    step: usize,
    json_len: Option<usize>,
) -> (Result<DecodedRequest, String>, usize) {
    let mut source = Trickle {
        rest: body,
        step,
        read: 0,
    };
    let size = BodySize {
        json_len,
        content_length: Some(body.len()),
        limit: body.len(),
    };
    let result = {
        let future = decode_stream(&mut source, size, i, o);
        let mut future = std::pin::pin!(future);
        let Poll::Ready(result) = future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        else {
            panic!("a trickled slice never waits");
        };
        result
    };
    (result.map_err(|e| e.to_string()), source.read)
}

#[test]
fn tokens_split_across_reads_decode_the_same() {
    let body = br#"{"id":"r-1","inputs":[{"name":"b","shape":[2],"datatype":"INT64","data":[12345,-67890]},
        {"name":"a","shape":[1,2],"datatype":"FP32","data":[[0.125,-1.5e3]]}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}"#;
    for step in [1, 2, 3, 7, 64] {
        let (r, _) = decode_trickled(body, step, None);
        let r = r.unwrap();
        assert_eq!(r.id.as_deref(), Some("r-1"));
        assert_eq!(r.inputs[0].data, TensorData::Fp32(vec![0.125, -1500.0]));
        assert_eq!(r.inputs[1].data, TensorData::Int64(vec![12345, -67890]));
        assert_eq!(
            r.outputs,
            vec![RequestedOutput {
                name: "y".into(),
                binary: true
            }]
        );
    }
}

#[test]
fn elements_beyond_the_shape_stop_the_read_at_once() {
    // 'a' holds 2 elements; a million zeros follow. Decoding stops at the third, having read
    // one buffer's worth of the body, not all of it.
    let mut body = br#"{"inputs":[{"name":"a","shape":[1,2],"datatype":"FP32","data":[0"#.to_vec();
    for _ in 0..1_000_000 {
        body.extend_from_slice(b",0");
    }
    body.extend_from_slice(b"]}]}");
    let (r, read) = decode_trickled(&body, 4096, None);
    let err = r.unwrap_err();
    assert!(
        err.contains("too many elements") && err.contains("3 elements"),
        "{err}"
    );
    assert!(
        read <= 2 * events::MAX_TOKEN,
        "read {read} of {} bytes",
        body.len()
    );
}

#[test]
fn without_a_shape_the_model_bounds_the_elements() {
    // 'data' before 'shape': the model's input [-1, 2] has an open dim, so the body bounds it;
    // 'b' is frozen at [2], so a third element is refused.
    let r = decode(
        r#"{"inputs":[{"name":"b","data":[1,2,3],"shape":[2],"datatype":"INT64"},
        {"name":"a","shape":[1,2],"datatype":"FP32","data":[1,2]}]}"#,
    );
    let err = r.unwrap_err();
    assert!(
        err.contains("input 'b' has too many elements") && err.contains("holds 2"),
        "{err}"
    );
    let r = decode(
        r#"{"inputs":[{"name":"a","data":[0.5,1],"shape":[1,2],"datatype":"FP32"},
        {"datatype":"INT64","data":[3,4],"shape":[2],"name":"b"}]}"#,
    )
    .unwrap();
    assert_eq!(r.inputs[0].data, TensorData::Fp32(vec![0.5, 1.0]));
    assert_eq!(r.inputs[1].data, TensorData::Int64(vec![3, 4]));
}

#[test]
fn data_before_name_and_datatype_is_decoded_as_the_input_it_names() {
    // Sorted keys, as serde_json and Go write them: "data" comes first.
    let r = decode(
        r#"{"inputs":[{"data":[1,2],"datatype":"INT64","name":"b","shape":[2]},
        {"data":[[0.5,-1]],"datatype":"FP32","name":"a","shape":[1,2]}]}"#,
    )
    .unwrap();
    assert_eq!(r.inputs[0].data, TensorData::Fp32(vec![0.5, -1.0]));
    assert_eq!(r.inputs[1].data, TensorData::Int64(vec![1, 2]));
    let err = decode(r#"{"inputs":[{"data":[1,2.5],"datatype":"INT64","name":"b","shape":[2]}]}"#)
        .unwrap_err();
    assert!(
        err.contains("input 'b': element 1 is 2.5, not a INT64 value"),
        "{err}"
    );
    // Without a name, the largest input bounds the elements.
    let err = decode(r#"{"inputs":[{"data":[1,2,3],"datatype":"INT64","name":"b","shape":[2]}]}"#)
        .unwrap_err();
    assert!(
        err.contains("has 3 elements in 'data', shape [2] needs 2"),
        "{err}"
    );
    // A model whose inputs share a datatype decodes straight into it.
    let spec = TensorSpec {
        name: "x".into(),
        datatype: DataType::Fp32,
        shape: vec![1, 2],
    };
    let (_, o) = specs();
    let r = decode_request(
        br#"{"inputs":[{"data":[1,2],"shape":[1,2],"datatype":"FP32","name":"x"}]}"#,
        None,
        &[spec],
        &o,
    )
    .unwrap();
    assert_eq!(r.inputs[0].data, TensorData::Fp32(vec![1.0, 2.0]));
}

#[test]
fn keys_and_values_the_protocol_does_not_use_are_skipped() {
    let r = decode(r#"{"model_name":"m","parameters":{"binary_data_output":false,"x":{"deep":[[1],[2]]}},
        "inputs":[{"name":"b","shape":[2],"datatype":"INT64","parameters":{"note":"hi"},"data":[1,2],"extra":null},
        {"name":"a","shape":[1,2],"datatype":"FP32","data":[1,2]}]}"#)
    .unwrap();
    assert_eq!(r.inputs.len(), 2);
    assert!(decode(r#"{"inputs":[]} x"#)
        .unwrap_err()
        .contains("invalid JSON"));
    assert!(decode(r#"[1,2]"#)
        .unwrap_err()
        .contains("not a JSON object"));
    assert!(decode(r#"{"inputs":[{"name":"b","name":"b"}]}"#)
        .unwrap_err()
        .contains("'name' twice"));
    assert!(decode(r#"{"outputs":[]}"#)
        .unwrap_err()
        .contains("no \"inputs\""));
}

#[test]
fn binary_data_split_across_reads_lands_in_the_typed_buffer() {
    let json = r#"{"inputs":[{"name":"b","shape":[2],"datatype":"INT64","parameters":{"binary_data_size":16}},
        {"name":"a","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}"#;
    let mut body = json.as_bytes().to_vec();
    for v in [7i64, -9] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0.25f32, 3.0] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    for step in [1, 3, 5, 4096] {
        let (r, _) = decode_trickled(&body, step, Some(json.len()));
        let r = r.unwrap();
        assert_eq!(r.inputs[0].data, TensorData::Fp32(vec![0.25, 3.0]));
        assert_eq!(r.inputs[1].data, TensorData::Int64(vec![7, -9]));
    }
    let (r, _) = decode_trickled(&body[..body.len() - 3], 7, Some(json.len()));
    assert!(r.unwrap_err().contains("only 5 remain"));
}

#[test]
fn bytes_elements_split_across_reads_keep_their_bounds() {
    let spec = |name: &str, datatype, shape: Vec<i64>| TensorSpec {
        name: name.into(),
        datatype,
        shape,
    };
    let inputs = [
        spec("s", DataType::Bytes, vec![-1]),
        spec("c", DataType::Int64, vec![1]),
    ];
    let outputs = [spec("y", DataType::Bytes, vec![-1])];
    let body = |shape: usize, elements: &[&str], cut: usize| {
        let mut binary = Vec::new();
        for e in elements {
            binary.extend_from_slice(&(e.len() as u32).to_le_bytes());
            binary.extend_from_slice(e.as_bytes());
        }
        binary.truncate(binary.len() - cut);
        let json = format!(
            r#"{{"inputs":[{{"name":"s","shape":[{shape}],"datatype":"BYTES","parameters":{{"binary_data_size":{}}}}},
            {{"name":"c","shape":[1],"datatype":"INT64","data":[4]}}]}}"#,
            binary.len()
        );
        let json_len = json.len();
        ([json.into_bytes(), binary].concat(), json_len)
    };
    let decode = |(body, json_len): (Vec<u8>, usize), step| {
        decode_trickled_for(&inputs, &outputs, &body, step, Some(json_len)).0
    };
    let words = ["", "五", "hello"];
    for step in [1, 2, 3, 5, 4096] {
        let r = decode(body(3, &words, 0), step).unwrap();
        let TensorData::Bytes(s) = &r.inputs[0].data else {
            panic!("{:?}", r.inputs[0].data)
        };
        assert_eq!(s.iter().collect::<Vec<_>>(), words);
        assert_eq!(r.inputs[1].data, TensorData::Int64(vec![4]));
    }
    let err = decode(body(2, &words, 0), 3).unwrap_err();
    assert!(err.contains("more than 2 BYTES elements"), "{err}");
    let err = decode(body(4, &words, 0), 3).unwrap_err();
    assert!(
        err.contains("has 3 BYTES elements in its binary data, shape [4] needs 4"),
        "{err}"
    );
    // Cut after the last element's length (5), or inside it.
    let err = decode(body(3, &words, 5), 1).unwrap_err();
    assert!(
        err.contains("BYTES element 2 has a length of 5 bytes, but only 0 remain"),
        "{err}"
    );
    let err = decode(body(3, &words, 8), 1).unwrap_err();
    assert!(
        err.contains("ends inside the 4-byte length of BYTES element 2"),
        "{err}"
    );
}
