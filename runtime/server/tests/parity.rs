//! The tract engine must answer like the real ONNX Runtime, both served by edge-runtime over HTTP.

mod common;

use common::*;
use edge_config::{Engine, Plan, OPTIMISED_MARKER};
use serde_json::{json, Value};

const TOLERANCE: f64 = 1e-4;

fn outputs(server: &Server, model: &str, body: &Value) -> Vec<(String, Vec<Value>)> {
    let (status, response) = post_json(
        &client(),
        &server.url(&format!("/v2/models/{model}/infer")),
        body,
    );
    assert_eq!(status, 200, "{response}");
    response["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| {
            let name = o["name"].as_str().expect("name").to_string();
            (name, o["data"].as_array().expect("data").clone())
        })
        .collect()
}

fn assert_close(tract: &[(String, Vec<Value>)], onnxruntime: &[(String, Vec<Value>)]) {
    assert_eq!(tract.len(), onnxruntime.len());
    for ((name, a), (other, b)) in tract.iter().zip(onnxruntime) {
        assert_eq!(name, other);
        assert_eq!(a.len(), b.len(), "output {name}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => assert!(
                    (x - y).abs() <= TOLERANCE,
                    "output {name}[{i}]: tract {x} vs onnxruntime {y}"
                ),
                _ => assert_eq!(x, y, "output {name}[{i}]"),
            }
        }
    }
}

fn engines(models: &[(&str, &std::path::Path)]) -> (Server, Server) {
    let tract = Server::start(runtime_config(Engine::Tract, models));
    let onnxruntime = Server::start(runtime_config(Engine::Onnxruntime, models));
    assert_eq!(get(&client(), &tract.url("/v2")).1["engine"], "tract");
    assert_eq!(
        get(&client(), &onnxruntime.url("/v2")).1["engine"],
        "onnxruntime"
    );
    (tract, onnxruntime)
}

#[test]
fn tract_matches_onnxruntime_on_ppocr_cls() {
    let model = cls_model();
    let (tract, onnxruntime) = engines(&[("cls", &model)]);
    let count: usize = CLS_SHAPE.iter().product();
    for seed in 0..3 {
        let body = json!({"inputs": [{
            "name": "x", "shape": CLS_SHAPE, "datatype": "FP32",
            "data": pseudo_random(count, seed),
        }]});
        let a = outputs(&tract, "cls", &body);
        let b = outputs(&onnxruntime, "cls", &body);
        assert_close(&a, &b);
        // The classifier ends in a softmax over {0, 180} degrees: a real model answers a distribution.
        let total: f64 = b[0].1.iter().filter_map(Value::as_f64).sum();
        assert!((total - 1.0).abs() < 1e-3, "softmax sums to {total}");
    }
}

/// Each engine serves from its quick plan as soon as it listens, then swaps its optimised plan
/// in and says so; tract's answers agree with ONNX Runtime's before and after.
#[test]
fn both_engines_serve_at_once_and_optimise_while_they_serve() {
    let model = cls_model();
    let (tract, onnxruntime) = engines(&[("cls", &model)]);
    let wait = std::time::Duration::from_secs(60);
    for server in [&tract, &onnxruntime] {
        server.wait_for_stderr("model 'cls' loaded with its quick plan", wait);
    }
    let count: usize = CLS_SHAPE.iter().product();
    let body = json!({"inputs": [{
        "name": "x", "shape": CLS_SHAPE, "datatype": "FP32", "data": pseudo_random(count, 7),
    }]});
    let before = (
        outputs(&tract, "cls", &body),
        outputs(&onnxruntime, "cls", &body),
    );
    assert_close(&before.0, &before.1);
    for server in [&tract, &onnxruntime] {
        let line = server.wait_for_stderr(OPTIMISED_MARKER, wait);
        assert!(line.contains("model=cls ms="), "{line}");
    }
    let after = (
        outputs(&tract, "cls", &body),
        outputs(&onnxruntime, "cls", &body),
    );
    assert_close(&after.0, &after.1);
    assert_close(&before.0, &after.1);
}

/// Told to start optimised (`start_plan = "optimised"`), a server builds each model's
/// optimised plan before it opens its port: no quick plan, nothing left to swap in, and its
/// answers are ONNX Runtime's.
#[test]
fn a_server_told_to_start_optimised_never_serves_a_quick_plan() {
    let model = cls_model();
    let mut config = runtime_config(Engine::Tract, &[("cls", &model)]);
    config.start_plan = Plan::Optimised;
    let tract = Server::start(config);
    let onnxruntime = Server::start(runtime_config(Engine::Onnxruntime, &[("cls", &model)]));
    tract.wait_for_stderr(
        "model 'cls' loaded and optimised",
        std::time::Duration::from_secs(60),
    );
    let count: usize = CLS_SHAPE.iter().product();
    let body = json!({"inputs": [{
        "name": "x", "shape": CLS_SHAPE, "datatype": "FP32", "data": pseudo_random(count, 11),
    }]});
    assert_close(
        &outputs(&tract, "cls", &body),
        &outputs(&onnxruntime, "cls", &body),
    );
    let said = tract.stderr();
    assert!(!said.contains("quick plan"), "{said}");
    assert!(!said.contains(OPTIMISED_MARKER), "{said}");
}

#[test]
fn tract_matches_onnxruntime_on_the_small_model() {
    let model = small_model();
    let (tract, onnxruntime) = engines(&[("small", &model)]);
    for seed in 0..3 {
        let a = pseudo_random(6, seed);
        let b: Vec<i64> = pseudo_random(6, seed + 100)
            .iter()
            .map(|x| (x * 3.0) as i64)
            .collect();
        let body = json!({"inputs": [
            {"name": "a", "shape": [2, 3], "datatype": "FP32", "data": a},
            {"name": "b", "shape": [2, 3], "datatype": "INT64", "data": b},
        ]});
        assert_close(
            &outputs(&tract, "small", &body),
            &outputs(&onnxruntime, "small", &body),
        );
    }
}

/// An image with several models (`[[model]]`): one server lists and answers each by its name,
/// each as the real ONNX Runtime does.
#[test]
fn one_server_serves_several_models_each_by_its_name() {
    let (cls, small) = (cls_model(), small_model());
    let (tract, onnxruntime) = engines(&[("cls", &cls), ("small", &small)]);
    for server in [&tract, &onnxruntime] {
        for name in ["cls", "small"] {
            let (status, meta) = get(&client(), &server.url(&format!("/v2/models/{name}")));
            assert_eq!((status, meta["name"].as_str()), (200, Some(name)), "{meta}");
        }
    }
    let count: usize = CLS_SHAPE.iter().product();
    let cls_body = json!({"inputs": [{
        "name": "x", "shape": CLS_SHAPE, "datatype": "FP32", "data": pseudo_random(count, 1),
    }]});
    let small_body = json!({"inputs": [
        {"name": "a", "shape": [2, 3], "datatype": "FP32", "data": pseudo_random(6, 2)},
        {"name": "b", "shape": [2, 3], "datatype": "INT64", "data": [0, 1, 2, 0, 1, 2]},
    ]});
    for (name, body) in [("cls", &cls_body), ("small", &small_body)] {
        assert_close(
            &outputs(&tract, name, body),
            &outputs(&onnxruntime, name, body),
        );
    }
}

/// Inputs exact in half precision (and their products with [0.5, 1, 2]), so every engine and
/// the expectation agree to the bit.
const HALF_INPUT: [f32; 6] = [1.0, -2.0, 0.25, -0.5, 3.0, 1024.0];

/// `edge-runtime` on `model` with `engine`, expected to refuse to start; what it said.
fn refused_start(engine: Engine, models: &[(&str, &std::path::Path)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("device.toml");
    std::fs::write(
        &config,
        device_config(runtime_config(engine, models)).to_toml(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edge-runtime"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "edge-runtime started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn fp16_tensors_go_in_and_out_over_json_and_binary_on_both_engines() {
    let model = half_model();
    let (tract, onnxruntime) = engines(&[("half", &model)]);
    let want: Vec<f32> = HALF_INPUT
        .iter()
        .zip([0.5, 1.0, 2.0].iter().cycle())
        .map(|(x, s)| x.max(0.0) * s)
        .collect();
    let url = |server: &Server| server.url("/v2/models/half/infer");
    for server in [&tract, &onnxruntime] {
        let (status, meta) = get(&client(), &server.url("/v2/models/half"));
        assert_eq!(status, 200);
        assert_eq!(meta["inputs"][0]["datatype"], "FP16", "{meta}");
        let body = json!({"inputs": [{
            "name": "h", "shape": [2, 3], "datatype": "FP16", "data": HALF_INPUT,
        }]});
        let (status, response) = post_json(&client(), &url(server), &body);
        assert_eq!(status, 200, "{response}");
        assert_eq!(response["outputs"][0]["datatype"], "FP16");
        assert_eq!(response["outputs"][0]["data"], json!(want));

        let header = json!({
            "inputs": [{"name": "h", "shape": [2, 3], "datatype": "FP16",
                        "parameters": {"binary_data_size": 12}}],
            "outputs": [{"name": "y", "parameters": {"binary_data": true}}],
        });
        let payload: Vec<u8> = HALF_INPUT
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect();
        let (status, json, binary) = post_binary(&url(server), &header, &payload);
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["outputs"][0]["parameters"]["binary_data_size"], 12);
        let got: Vec<f32> = binary
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect();
        assert_eq!(got, want);

        // Beyond FP16's range is refused, not sent on as infinity.
        let mut data = HALF_INPUT.map(f64::from).to_vec();
        data[0] = 70000.0;
        let body = json!({"inputs": [{
            "name": "h", "shape": [2, 3], "datatype": "FP16", "data": data,
        }]});
        let (status, response) = post_json(&client(), &url(server), &body);
        assert_eq!(status, 400, "{response}");
        assert!(
            response["error"].as_str().unwrap().contains("70000"),
            "{response}"
        );
    }
}

#[test]
fn bf16_is_served_by_onnxruntime_and_refused_at_load_by_tract() {
    let model = bfloat_model();
    let server = Server::start(runtime_config(Engine::Onnxruntime, &[("bf", &model)]));
    let want: Vec<f32> = HALF_INPUT
        .iter()
        .zip([0.5, 1.0, 2.0].iter().cycle())
        .map(|(x, s)| x * s)
        .collect();
    let body = json!({"inputs": [{
        "name": "x", "shape": [2, 3], "datatype": "BF16", "data": HALF_INPUT,
    }]});
    let (status, response) = post_json(&client(), &server.url("/v2/models/bf/infer"), &body);
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["outputs"][0]["datatype"], "BF16");
    assert_eq!(response["outputs"][0]["data"], json!(want));

    let said = refused_start(Engine::Tract, &[("bf", &model)]);
    assert!(
        said.contains("model 'bf'")
            && said.contains("BF16 tensors, which engine \"tract\" does not run")
            && said.contains("use engine = \"onnxruntime\""),
        "{said}"
    );
}

/// Words with what a BYTES element may be: empty, upper case, not ASCII, unknown to the model.
const WORDS: [&str; 5] = ["One", "two", "五", "", "nope"];
const CODES: [i64; 3] = [0, 5, 9];

/// The binary extension's BYTES layout, as Triton writes it: per element a 4-byte
/// little-endian length, then the bytes.
fn length_prefixed<S: AsRef<[u8]>>(elements: &[S]) -> Vec<u8> {
    elements
        .iter()
        .flat_map(|e| {
            let e = e.as_ref();
            (e.len() as u32)
                .to_le_bytes()
                .into_iter()
                .chain(e.iter().copied())
        })
        .collect()
}

/// A JSON body as written, keys in the order given (`json!` sorts them).
fn post_text(url: &str, body: &str) -> (u16, Value) {
    json_of(
        client()
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
            .expect("POST"),
    )
}

/// The elements of a length-prefixed BYTES buffer.
fn split_length_prefixed(mut bytes: &[u8]) -> Vec<String> {
    let mut elements = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        elements.push(String::from_utf8(bytes[4..4 + len].to_vec()).unwrap());
        bytes = &bytes[4 + len..];
    }
    elements
}

#[test]
fn bytes_tensors_answer_as_the_host_onnxruntime_over_json_and_binary() {
    let model = strings_model();
    let want = host_onnxruntime(&model, &json!({"words": WORDS, "codes": CODES}));
    // The real model, not an echo of the request: the host's answer is the label encoding.
    assert_eq!(want["ids"], json!([-1, 2, 5, -1, -1]), "{want}");
    assert_eq!(want["names"], json!(["zero", "五", "<unk>"]), "{want}");
    let server = Server::start(runtime_config(Engine::Onnxruntime, &[("s", &model)]));
    let url = server.url("/v2/models/s/infer");
    let (_, meta) = get(&client(), &server.url("/v2/models/s"));
    assert_eq!(meta["inputs"][0]["datatype"], "BYTES", "{meta}");
    assert_eq!(meta["outputs"][1]["datatype"], "BYTES", "{meta}");

    // serde_json writes keys sorted: "data" before "datatype" and "name", the decoder's
    // path for elements read before their type is known.
    let body = json!({"inputs": [
        {"name": "words", "shape": [WORDS.len()], "datatype": "BYTES", "data": WORDS},
        {"name": "codes", "shape": [CODES.len()], "datatype": "INT64", "data": CODES},
    ]});
    let (status, response) = post_json(&client(), &url, &body);
    assert_eq!(status, 200, "{response}");
    for output in response["outputs"].as_array().unwrap() {
        let name = output["name"].as_str().unwrap();
        assert_eq!(output["data"], want[name], "output {name}: {response}");
    }
    assert_eq!(response["outputs"][1]["datatype"], "BYTES", "{response}");
    assert_eq!(response["outputs"][2]["shape"], json!([WORDS.len()]));

    // Name first, as Triton's clients write it, straight into the typed buffer.
    let ordered = r#"{"inputs":[{"name":"words","datatype":"BYTES","shape":[2],"data":["two","x"]},
        {"name":"codes","datatype":"INT64","shape":[1],"data":[1]}]}"#;
    let (status, response) = post_text(&url, ordered);
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["outputs"][0]["data"], json!([2, -1]), "{response}");

    let words = length_prefixed(&WORDS);
    let codes: Vec<u8> = CODES.iter().flat_map(|c| c.to_le_bytes()).collect();
    let header = json!({
        "inputs": [
            {"name": "words", "shape": [WORDS.len()], "datatype": "BYTES",
             "parameters": {"binary_data_size": words.len()}},
            {"name": "codes", "shape": [CODES.len()], "datatype": "INT64",
             "parameters": {"binary_data_size": codes.len()}},
        ],
        "outputs": [{"name": "names", "parameters": {"binary_data": true}},
                    {"name": "echo", "parameters": {"binary_data": true}}],
    });
    let (status, json, binary) = post_binary(&url, &header, &[words, codes].concat());
    assert_eq!(status, 200, "{json}");
    let names_len = json["outputs"][0]["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    let names = split_length_prefixed(&binary[..names_len]);
    let echo = split_length_prefixed(&binary[names_len..]);
    assert_eq!(json!(names), want["names"]);
    assert_eq!(json!(echo), want["echo"]);
    assert_eq!(echo, WORDS);
}

#[test]
fn hostile_bytes_tensors_are_refused_with_400_and_the_server_keeps_serving() {
    let model = strings_model();
    let server = Server::start(runtime_config(Engine::Onnxruntime, &[("s", &model)]));
    let url = server.url("/v2/models/s/infer");
    let codes = json!({"name": "codes", "shape": [1], "datatype": "INT64", "data": [1]});
    let binary_words = |shape: u64, size: u64| {
        json!({"inputs": [
            {"name": "words", "shape": [shape], "datatype": "BYTES",
             "parameters": {"binary_data_size": size}},
            codes,
        ]})
    };
    let refused = |(status, json, _): (u16, Value, Vec<u8>), says: &str| {
        assert_eq!(status, 400, "{json}");
        let error = json["error"].as_str().unwrap();
        assert!(error.contains(says), "{error}");
    };
    // An element's length reaches past the body.
    let mut payload = 1000u32.to_le_bytes().to_vec();
    payload.extend_from_slice(b"abcd");
    refused(
        post_binary(&url, &binary_words(1, 8), &payload),
        "BYTES element 0 has a length of 1000 bytes, but only 4 remain of its binary_data_size 8",
    );
    // A huge element count, in binary: each element needs its 4-byte length.
    refused(
        post_binary(&url, &binary_words(100_000_000, 8), &payload),
        "shape [100000000] of BYTES needs at least 400000000",
    );
    // ... and what it would need, claimed: more than the body holds.
    refused(
        post_binary(&url, &binary_words(100_000_000, 400_000_000), &payload),
        "claims 400000000 bytes of binary data but only 8 remain in the body",
    );
    // ... and in JSON, the shape before the data (as clients write it): refused before any
    // element is read or any buffer reserved.
    let body = r#"{"inputs":[{"name":"words","datatype":"BYTES","shape":[100000000],"data":["a"]},
        {"name":"codes","datatype":"INT64","shape":[1],"data":[1]}]}"#;
    let (status, response) = post_text(&url, body);
    assert_eq!(status, 400, "{response}");
    let error = response["error"].as_str().unwrap();
    assert!(
        error.contains("(100000000 elements), more than a") && error.contains("JSON body can hold"),
        "{error}"
    );
    // What ONNX Runtime's string tensors cannot hold.
    refused(
        post_binary(&url, &binary_words(1, 5), &length_prefixed(&[[0xffu8]])),
        "BYTES element 0 is not UTF-8 text",
    );
    let body = json!({"inputs": [
        {"name": "words", "shape": [1], "datatype": "BYTES", "data": ["a\u{0}b"]},
        codes,
    ]});
    let (status, response) = post_json(&client(), &url, &body);
    assert_eq!(status, 400, "{response}");
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .contains("holds a NUL byte"),
        "{response}"
    );
    let body = json!({"inputs": [
        {"name": "words", "shape": [1], "datatype": "BYTES", "data": ["two"]},
        codes,
    ]});
    let (status, response) = post_json(&client(), &url, &body);
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["outputs"][0]["data"], json!([2]));
}

#[test]
fn a_model_with_string_tensors_is_refused_at_load_by_tract() {
    let said = refused_start(Engine::Tract, &[("s", &strings_model())]);
    assert!(
        said.contains("model 's'")
            && said.contains("BYTES tensors, which engine \"tract\" does not run")
            && said.contains("use engine = \"onnxruntime\""),
        "{said}"
    );
}
