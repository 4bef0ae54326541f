//! Inference speed: tract against the real ONNX Runtime on the same real models, through the
//! device's own server, on this host and in emulated guests, and the host's figures against
//! Python's onnxruntime on the same input. Each model's rows run back to back, so the pairs a
//! ratio is made of see the same host load.

mod client;
mod floor;
mod guest;
pub mod models;
pub mod python;
pub mod timing;

use std::path::Path;

use anyhow::{Context, Result};
use edge_config::Engine;
use serde::Serialize;

use crate::imagetest::host_server::{start_host_server, HostServer, HostServerSpec};
use client::Wait;
use models::PreparedModel;
use timing::{Endpoint, Latency};

pub use guest::{guest_plan, measure_guest, EngineCost, GUEST_MODEL};

pub const MEASURES: &str = "the PaddleOCR models from the rapidocr_onnxruntime 1.4.4 wheel, \
    dims frozen as an image carries them, one seeded input each, sent with the binary tensor \
    extension. engine ms: the model's session.run as the server times it (server-timing \
    header); request ms: the client's, request sent to answer read, on one kept-alive \
    connection (on the host the client polls its socket, so its own wake-up after a model's \
    run is not counted); HTTP ms: median of the difference, everything else the server does \
    (decoding, the engine's input and output copies, the hand-off to the engine thread, \
    encoding) and the loopback; the HTTP target's floor: the same request and client against a server that only \
    reads it, keeps a CPU busy for the engine's p50 and answers. \
    Host: the device binaries on this machine with 1 intra-op thread, one request at a time \
    for latency, then as many clients as CPUs for throughput (edge-runtime runs one request \
    per model at a time). Python: onnxruntime in-process on the same file and input bytes, 1 \
    intra-op thread, its throughput from as many threads sharing one session. Guests: the QEMU \
    recipes' images with the cls model and each engine and without model updates (so without \
    their data disk and its driver), the image's own thread setting, \
    measured through the forwarded port under emulation (figures many times the hardware's). \
    Engine cost: ready guest ms is the median of three boots, the other figures the last boot's, \
    on which the inference ran. The boot-to-ready target's floor: the image's kernel and command \
    line booting the bare initramfs (as the boot floor) just before each of the tract image's \
    three boots, the median, so both run under the same host load.";

/// One engine serving one model somewhere.
#[derive(Debug, Clone, Serialize)]
pub struct InferenceFigures {
    /// `host x86_64` or `guest qemu-x86_64 (q35, Tcg)`.
    pub place: String,
    /// `tract`, `onnxruntime` or `python onnxruntime` (in-process, no server).
    pub engine: String,
    pub model: String,
    /// Engine time (or Python's call) p50/p99, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub runs: usize,
    /// The server's request figures; none for Python.
    pub latency: Option<Latency>,
    pub clients: usize,
    pub per_second: f64,
}

/// Pairwise ratios of one model's figures at one place, from the same run.
#[derive(Debug, Clone, Serialize)]
pub struct InferenceRatio {
    pub place: String,
    pub model: String,
    /// tract's engine p50 over onnxruntime's.
    pub tract_over_onnxruntime: Option<f64>,
    /// edge-runtime's onnxruntime engine p50 over Python's (same library version, same file).
    pub edge_over_python: Option<f64>,
    /// edge-runtime's whole request p50 (HTTP included) over Python's in-process call.
    pub edge_request_over_python: Option<f64>,
}

const ENGINES: [Engine; 2] = [Engine::Tract, Engine::Onnxruntime];

pub fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Tract => "tract",
        Engine::Onnxruntime => "onnxruntime",
    }
}

/// Every model on this host: each engine through edge-runtime, then Python.
pub fn measure_host(
    cache_dir: &Path,
    models: &[PreparedModel],
    steps: &mut crate::bench::progress::Steps,
) -> Result<Vec<InferenceFigures>> {
    let clients = std::thread::available_parallelism().map_or(1, |n| n.get());
    let place = format!("host {}", std::env::consts::ARCH);
    let served: Vec<(&str, &Path)> = models
        .iter()
        .map(|m| (m.spec.name, m.frozen.as_path()))
        .collect();
    let servers: Vec<(Engine, HostServer)> = ENGINES
        .into_iter()
        .map(|engine| {
            let server = start_host_server(
                cache_dir,
                &HostServerSpec {
                    engine,
                    models: &served,
                    threads: 1,
                    max_concurrency: clients,
                },
            )?;
            Ok((engine, server))
        })
        .collect::<Result<_>>()?;
    let mut figures = Vec::new();
    for model in models {
        steps.step(&format!("inference {} on the host", model.spec.name));
        let warmup = warmup(model.spec.host_runs);
        for (engine, server) in &servers {
            let endpoint = Endpoint {
                url: format!(
                    "{}/v2/models/{}/infer",
                    server.client.base(),
                    model.spec.name
                ),
                request: &model.request,
                json_len: model.json_len,
                latency_wait: Wait::Poll,
            };
            let context = || {
                format!(
                    "{} on {} with {}",
                    model.spec.name,
                    place,
                    engine_name(*engine)
                )
            };
            let mut served = served_figures(
                &place,
                *engine,
                model,
                &endpoint,
                warmup,
                model.spec.host_runs,
                clients,
            )
            .with_context(context)?;
            if let Some(latency) = served.latency.as_mut() {
                let engine_p50 = std::time::Duration::from_secs_f64(latency.engine_p50_ms / 1e3);
                let floor = floor::overhead_p50_ms(
                    &model.request,
                    model.json_len,
                    endpoint.latency_wait,
                    engine_p50,
                    warmup,
                    model.spec.host_runs,
                )
                .with_context(|| format!("the HTTP floor for {}", context()))?;
                latency.http_floor_p50_ms = Some(floor);
            }
            figures.push(served);
        }
        let py = python::measure(cache_dir, model, warmup, clients, model.spec.host_runs)?;
        figures.push(InferenceFigures {
            place: place.clone(),
            engine: format!("python onnxruntime {}", py.onnxruntime_version),
            model: model.spec.name.to_string(),
            p50_ms: py.p50_ms,
            p99_ms: py.p99_ms,
            runs: py.runs,
            latency: None,
            clients: py.clients,
            per_second: py.per_second,
        });
    }
    Ok(figures)
}

/// A tenth of the timed runs, at least two, untimed first.
fn warmup(runs: usize) -> usize {
    (runs / 10).max(2)
}

/// Latency, then throughput over as many requests, of one served model.
fn served_figures(
    place: &str,
    engine: Engine,
    model: &PreparedModel,
    endpoint: &Endpoint,
    warmup: usize,
    runs: usize,
    clients: usize,
) -> Result<InferenceFigures> {
    let latency = timing::latency(endpoint, warmup, runs)?;
    let throughput = timing::throughput(endpoint, clients, runs)?;
    Ok(InferenceFigures {
        place: place.to_string(),
        engine: engine_name(engine).to_string(),
        model: model.spec.name.to_string(),
        p50_ms: latency.engine_p50_ms,
        p99_ms: latency.engine_p99_ms,
        runs,
        latency: Some(latency),
        clients,
        per_second: throughput.per_second,
    })
}

impl InferenceRatio {
    /// One row per (place, model) that has figures to pair.
    pub fn pair(figures: &[InferenceFigures]) -> Vec<InferenceRatio> {
        let mut keys: Vec<(&str, &str)> = Vec::new();
        for f in figures {
            if !keys.contains(&(f.place.as_str(), f.model.as_str())) {
                keys.push((f.place.as_str(), f.model.as_str()));
            }
        }
        keys.into_iter()
            .map(|(place, model)| {
                let find = |pred: &dyn Fn(&str) -> bool| {
                    figures
                        .iter()
                        .find(|f| f.place == place && f.model == model && pred(&f.engine))
                };
                let tract = find(&|e| e == "tract");
                let ort = find(&|e| e == "onnxruntime");
                let py = find(&|e| e.starts_with("python "));
                let over = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    (Some(a), Some(b)) if b > 0.0 => Some(crate::bench::round3(a / b)),
                    _ => None,
                };
                InferenceRatio {
                    place: place.to_string(),
                    model: model.to_string(),
                    tract_over_onnxruntime: over(tract.map(|f| f.p50_ms), ort.map(|f| f.p50_ms)),
                    edge_over_python: over(ort.map(|f| f.p50_ms), py.map(|f| f.p50_ms)),
                    edge_request_over_python: over(
                        ort.and_then(|f| f.latency.as_ref())
                            .map(|l| l.request_p50_ms),
                        py.map(|f| f.p50_ms),
                    ),
                }
            })
            .collect()
    }
}
