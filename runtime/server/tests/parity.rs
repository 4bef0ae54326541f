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
