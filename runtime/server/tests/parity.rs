//! The tract engine must answer like the real ONNX Runtime, both served by edge-runtime over HTTP.

mod common;

use common::*;
use edge_config::Engine;
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
