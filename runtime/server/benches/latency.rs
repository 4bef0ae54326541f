//! Latency bench: `cargo bench -p edge-runtime --bench latency`.
//!
//! For each engine (tract, onnxruntime) and model (PP-OCR cls, the small model) it measures p50/p99
//! of a direct `Model::run` and of the same request through HTTP (JSON and binary tensor data);
//! the difference is the server's per-request overhead. ort allows one backend per process, so
//! each engine's direct runs happen in a child process of this bench.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use edge_config::{Engine, ModelConfig};
use edge_runtime::engine::{init_backend, Model};
use edge_runtime::tensor::{Tensor, TensorData};

const WARMUP: usize = 20;
const ITERATIONS: usize = 300;
const CHILD_ENV: &str = "EDGE_BENCH_DIRECT";

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Tract => "tract",
        Engine::Onnxruntime => "onnxruntime",
    }
}

/// The inputs each model is benchmarked with.
fn inputs(model: &str) -> Vec<Tensor> {
    match model {
        "cls" => vec![Tensor {
            name: "x".into(),
            shape: CLS_SHAPE.to_vec(),
            data: TensorData::Fp32(pseudo_random(CLS_SHAPE.iter().product(), 7)),
        }],
        _ => vec![
            Tensor {
                name: "a".into(),
                shape: vec![2, 3],
                data: TensorData::Fp32(pseudo_random(6, 7)),
            },
            Tensor {
                name: "b".into(),
                shape: vec![2, 3],
                data: TensorData::Int64(vec![1, -1, 2, -2, 3, -3]),
            },
        ],
    }
}

/// (p50, p99) of `ITERATIONS` timed calls after a warm-up.
fn measure(mut call: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..WARMUP {
        call();
    }
    let mut times: Vec<Duration> = (0..ITERATIONS)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[ITERATIONS / 2], times[ITERATIONS * 99 / 100])
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Child mode: direct session runs for one engine, one line per model on stdout.
fn direct(engine: Engine, models: &[(&str, &Path)]) {
    let library = (engine == Engine::Onnxruntime).then(onnxruntime_library);
    let backend = init_backend(engine, library.as_deref()).expect("engine");
    for (name, path) in models {
        let config = ModelConfig {
            name: name.to_string(),
            path: path.to_string_lossy().into_owned(),
            version: "1".into(),
        };
        let model = Model::load(&backend, &config, 1).expect("model");
        let input = inputs(name);
        let (p50, p99) = measure(|| {
            model.run(input.clone()).expect("run");
        });
        println!("{name} {} {}", micros(p50), micros(p99));
    }
}

fn json_body(model: &str) -> Vec<u8> {
    let inputs: Vec<serde_json::Value> = inputs(model)
        .iter()
        .map(|t| {
            serde_json::json!({"name": t.name, "shape": t.shape,
                "datatype": t.data.datatype().name(), "data": t.data})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "inputs": inputs })).unwrap()
}

fn binary_body(model: &str) -> (Vec<u8>, usize) {
    let tensors = inputs(model);
    let inputs: Vec<serde_json::Value> = tensors
        .iter()
        .map(|t| {
            serde_json::json!({"name": t.name, "shape": t.shape, "datatype": t.data.datatype().name(),
                "parameters": {"binary_data_size": t.data.len() * t.data.datatype().byte_size()}})
        })
        .collect();
    let mut body = serde_json::to_vec(&serde_json::json!({
        "inputs": inputs, "parameters": {"binary_data_output": true}
    }))
    .unwrap();
    let json_len = body.len();
    for t in &tensors {
        t.data.write_le(&mut body);
    }
    (body, json_len)
}

fn main() {
    let models = [("cls", cls_model()), ("small", small_model())];
    let models: Vec<(&str, &Path)> = models.iter().map(|(n, p)| (*n, p.as_path())).collect();
    if let Ok(engine) = std::env::var(CHILD_ENV) {
        let engine = if engine == "tract" {
            Engine::Tract
        } else {
            Engine::Onnxruntime
        };
        return direct(engine, &models);
    }
    println!(
        "p50 / p99 in microseconds, {ITERATIONS} runs after {WARMUP} warm-up, 1 intra-op thread"
    );
    println!(
        "{:<12} {:<6} {:>20} {:>20} {:>20} {:>12}",
        "engine", "model", "direct", "http json", "http binary", "overhead p50"
    );
    for engine in [Engine::Tract, Engine::Onnxruntime] {
        let output = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, engine_name(engine))
            .output()
            .expect("running the direct bench");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let direct = String::from_utf8(output.stdout).unwrap();
        let server = Server::start(runtime_config(engine, &models));
        let agent = client();
        for ((name, _), line) in models.iter().zip(direct.lines()) {
            let fields: Vec<f64> = line
                .split(' ')
                .skip(1)
                .map(|f| f.parse().unwrap())
                .collect();
            let url = server.url(&format!("/v2/models/{name}/infer"));
            let json = json_body(name);
            let (json50, json99) = measure(|| {
                let response = agent.post(&url).send(&json[..]).unwrap();
                assert_eq!(response.status(), 200);
                response.into_body().read_to_vec().unwrap();
            });
            let (binary, json_len) = binary_body(name);
            let (bin50, bin99) = measure(|| {
                let response = agent
                    .post(&url)
                    .header("Inference-Header-Content-Length", &json_len.to_string())
                    .send(&binary[..])
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.into_body().read_to_vec().unwrap();
            });
            println!(
                "{:<12} {:<6} {:>9.0} / {:>8.0} {:>9.0} / {:>8.0} {:>9.0} / {:>8.0} {:>5.0} / {:.0}",
                engine_name(engine),
                name,
                fields[0],
                fields[1],
                micros(json50),
                micros(json99),
                micros(bin50),
                micros(bin99),
                micros(bin50) - fields[0],
                micros(json50) - fields[0],
            );
        }
    }
    println!("overhead p50 = http binary - direct / http json - direct");
}
