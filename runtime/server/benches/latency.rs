//! Latency bench: `cargo bench -p edge-runtime --bench latency`.
//!
//! For each engine (tract, onnxruntime) and model (PP-OCR cls, PP-OCRv4 det and rec, tiny-mlp,
//! the two-input small model) it measures p50/p99 of a direct `session.run` and of the same
//! request through HTTP (JSON and binary tensor data); the difference is the server's per-request
//! overhead. ort allows one backend per process, so each engine's direct runs happen in a child
//! process of this bench, driven over a pipe. The three paths are interleaved run by run (direct,
//! JSON, binary, direct, ...), so load from other processes on the machine hits them alike.
//!
//! `EDGE_BENCH_ENGINES=tract,onnxruntime` and `EDGE_BENCH_MODELS=cls,det,rec,tiny-mlp,small`
//! (comma-separated) pick a subset.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use edge_config::{Engine, ModelConfig};
use edge_runtime::engine::{init_backend, Model};
use edge_runtime::tensor::{Tensor, TensorData};

const CHILD_ENV: &str = "EDGE_BENCH_DIRECT";
/// Requests carry det's 1x3x640x640 input as JSON text (~15 MB).
const MAX_BODY_BYTES: usize = 64 << 20;

struct Bench {
    name: &'static str,
    path: fn() -> PathBuf,
    inputs: fn() -> Vec<Tensor>,
    warmup: usize,
    /// Timed runs per path; det and rec get fewer (a det run takes ~0.3 s) so a full bench takes
    /// minutes. Of 100 runs, p99 is the slowest one.
    iterations: usize,
}

const BENCHES: [Bench; 5] = [
    Bench {
        name: "cls",
        path: cls_model,
        inputs: || image_input(&CLS_SHAPE),
        warmup: 20,
        iterations: 300,
    },
    Bench {
        name: "det",
        path: det_model,
        inputs: || image_input(&DET_SHAPE),
        warmup: 5,
        iterations: 100,
    },
    Bench {
        name: "rec",
        path: rec_model,
        inputs: || image_input(&REC_SHAPE),
        warmup: 10,
        iterations: 200,
    },
    Bench {
        name: "tiny-mlp",
        path: tiny_mlp_model,
        inputs: || fp32_input("x", &TINY_MLP_SHAPE),
        warmup: 20,
        iterations: 300,
    },
    Bench {
        name: "small",
        path: small_model,
        inputs: || {
            let mut inputs = fp32_input("a", &[2, 3]);
            inputs.push(Tensor {
                name: "b".into(),
                shape: vec![2, 3],
                data: TensorData::Int64(vec![1, -1, 2, -2, 3, -3]),
            });
            inputs
        },
        warmup: 20,
        iterations: 300,
    },
];

fn fp32_input(name: &str, shape: &[usize]) -> Vec<Tensor> {
    vec![Tensor {
        name: name.into(),
        shape: shape.to_vec(),
        data: TensorData::Fp32(pseudo_random(shape.iter().product(), 7)),
    }]
}

/// The PP-OCR models' single image input `x`.
fn image_input(shape: &[usize]) -> Vec<Tensor> {
    fp32_input("x", shape)
}

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Tract => "tract",
        Engine::Onnxruntime => "onnxruntime",
    }
}

/// The entries of `all` named in the comma-separated `variable`, or all of them when it is unset.
fn selected<T>(variable: &str, all: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
    let Ok(wanted) = std::env::var(variable) else {
        return all;
    };
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    let known: Vec<String> = all.iter().map(|t| name(t).to_string()).collect();
    if let Some(unknown) = wanted.iter().find(|w| !known.iter().any(|k| k == *w)) {
        eprintln!("{variable}: unknown name '{unknown}'; choose from {known:?}");
        std::process::exit(2);
    }
    all.into_iter()
        .filter(|t| wanted.contains(&name(t)))
        .collect()
}

/// (p50, p99) of the timed runs.
fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let n = times.len();
    (times[n / 2], times[(n * 99 / 100).min(n - 1)])
}

fn timed(call: impl FnOnce()) -> Duration {
    let start = Instant::now();
    call();
    start.elapsed()
}

/// Reads the whole response, past ureq's 10 MB default limit (det's JSON output is a 640x640 map).
fn read_all(response: ureq::http::Response<ureq::Body>) {
    response
        .into_body()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Child mode: loads every model on one engine, then for each model name read from stdin runs
/// that model once and answers with the duration of its `session.run` in nanoseconds.
fn direct(engine: Engine, benches: &[(&Bench, PathBuf)]) {
    let library = (engine == Engine::Onnxruntime).then(onnxruntime_library);
    let backend = init_backend(engine, library.as_deref()).expect("engine");
    let models: Vec<(&str, Model, Vec<Tensor>)> = benches
        .iter()
        .map(|(bench, path)| {
            let config = ModelConfig {
                name: bench.name.to_string(),
                path: path.to_string_lossy().into_owned(),
                version: "1".into(),
            };
            let model = Model::load(&backend, &config, 1).expect("model");
            (bench.name, model, (bench.inputs)())
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready").unwrap();
    stdout.flush().unwrap();
    for line in std::io::stdin().lines() {
        let name = line.unwrap();
        let (_, model, input) = models
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("no model {name:?}"));
        // `session.run` alone, as the server's `server-timing` reports it.
        let time = model.run(input.clone()).expect("run").session_time;
        writeln!(stdout, "{}", time.as_nanos()).unwrap();
        stdout.flush().unwrap();
    }
}

/// This bench again, as a child running one engine's models directly on request.
struct DirectChild {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl DirectChild {
    fn start(engine: Engine, benches: &[(&Bench, PathBuf)]) -> DirectChild {
        let names: Vec<&str> = benches.iter().map(|(b, _)| b.name).collect();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, engine_name(engine))
            .env("EDGE_BENCH_MODELS", names.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the direct bench");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut this = DirectChild { child, stdout };
        assert_eq!(this.answer(), "ready", "the direct bench did not start");
        this
    }

    fn answer(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "the direct bench exited: {:?}",
            self.child.wait()
        );
        line.trim_end().to_string()
    }

    /// One direct run of `model`, timed inside the child.
    fn run(&mut self, model: &str) -> Duration {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{model}").unwrap();
        stdin.flush().unwrap();
        Duration::from_nanos(self.answer().parse().unwrap())
    }
}

impl Drop for DirectChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // end of input: the child exits
        let _ = self.child.wait();
    }
}

fn json_body(inputs: &[Tensor]) -> Vec<u8> {
    let inputs: Vec<serde_json::Value> = inputs
        .iter()
        .map(|t| {
            serde_json::json!({"name": t.name, "shape": t.shape,
                "datatype": t.data.datatype().name(), "data": t.data})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "inputs": inputs })).unwrap()
}

/// The binary-extension body (JSON header, then the raw tensors) and its header's length.
fn binary_body(tensors: &[Tensor]) -> (Vec<u8>, usize) {
    let inputs: Vec<serde_json::Value> = tensors
        .iter()
        .map(|t| {
            let mut bytes = Vec::new();
            t.data.write_le(&mut bytes);
            serde_json::json!({"name": t.name, "shape": t.shape, "datatype": t.data.datatype().name(),
                "parameters": {"binary_data_size": bytes.len()}})
        })
        .collect();
    let mut body = serde_json::to_vec(&serde_json::json!({
        "inputs": inputs, "parameters": {"binary_data_output": true}
    }))
    .unwrap();
    let json_len = body.len();
    for t in tensors {
        t.data.write_le(&mut body);
    }
    (body, json_len)
}

fn main() {
    let benches: Vec<(&Bench, PathBuf)> =
        selected("EDGE_BENCH_MODELS", BENCHES.iter().collect(), |b| b.name)
            .into_iter()
            .map(|b| (b, (b.path)()))
            .collect();
    if let Ok(engine) = std::env::var(CHILD_ENV) {
        let engine = if engine == "tract" {
            Engine::Tract
        } else {
            Engine::Onnxruntime
        };
        return direct(engine, &benches);
    }
    let engines = selected(
        "EDGE_BENCH_ENGINES",
        vec![Engine::Tract, Engine::Onnxruntime],
        |e| engine_name(*e),
    );
    println!("p50 / p99 in ms, 1 intra-op thread; runs after warm-up:");
    for (bench, _) in &benches {
        println!(
            "  {}: {} runs after {} warm-up",
            bench.name, bench.iterations, bench.warmup
        );
    }
    println!(
        "{:<12} {:<9} {:>19} {:>19} {:>19} {:>21}",
        "engine", "model", "direct", "http json", "http binary", "overhead p50 bin/json"
    );
    for engine in engines {
        let mut direct = DirectChild::start(engine, &benches);
        let models: Vec<(&str, &std::path::Path)> =
            benches.iter().map(|(b, p)| (b.name, p.as_path())).collect();
        let mut config = runtime_config(engine, &models);
        config.max_body_bytes = Some(MAX_BODY_BYTES);
        let server = Server::start(config);
        let agent = client();
        for (bench, _) in &benches {
            let url = server.url(&format!("/v2/models/{}/infer", bench.name));
            let inputs = (bench.inputs)();
            let json = json_body(&inputs);
            let (binary, json_len) = binary_body(&inputs);
            let json_len = json_len.to_string();
            let mut times: [Vec<Duration>; 3] = Default::default();
            for run in 0..bench.warmup + bench.iterations {
                let direct = direct.run(bench.name);
                let json = timed(|| {
                    let response = agent.post(&url).send(&json[..]).unwrap();
                    assert_eq!(response.status(), 200);
                    read_all(response);
                });
                let binary = timed(|| {
                    let response = agent
                        .post(&url)
                        .header("Inference-Header-Content-Length", &json_len)
                        .send(&binary[..])
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    read_all(response);
                });
                if run >= bench.warmup {
                    for (path, time) in times.iter_mut().zip([direct, json, binary]) {
                        path.push(time);
                    }
                }
            }
            let [(direct50, direct99), (json50, json99), (bin50, bin99)] = times.map(|t| {
                let (p50, p99) = percentiles(t);
                (millis(p50), millis(p99))
            });
            println!(
                "{:<12} {:<9} {:>8.3} / {:>8.3} {:>8.3} / {:>8.3} {:>8.3} / {:>8.3} {:>9.3} / {:.3}",
                engine_name(engine),
                bench.name,
                direct50,
                direct99,
                json50,
                json99,
                bin50,
                bin99,
                bin50 - direct50,
                json50 - direct50,
            );
        }
    }
    println!("overhead p50 = http binary p50 - direct p50 / http json p50 - direct p50");
}
