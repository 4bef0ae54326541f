//! Python's `onnxruntime` on the same frozen model and the same input bytes, in-process (no
//! HTTP), as a data scientist would call it: the figure the host's edge-runtime is held against.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::models::PreparedModel;
use crate::bench::round3;
use crate::bench::stats::percentile;

/// Same settings as the host servers: one intra-op thread per run, full graph optimisation;
/// throughput from `clients` threads sharing one session (ORT runs them at once).
const SCRIPT: &str = r#"
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np, onnxruntime as ort
model, input_file, name, shape, warmup, runs, clients, requests = sys.argv[1:9]
shape = [int(d) for d in shape.split(",")]
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
feed = {name: np.fromfile(input_file, dtype="<f4").reshape(shape)}
for _ in range(int(warmup)):
    session.run(None, feed)
latency = []
for _ in range(int(runs)):
    started = time.perf_counter()
    session.run(None, feed)
    latency.append((time.perf_counter() - started) * 1e3)
clients, requests = int(clients), int(requests)
def work(n):
    for _ in range(n):
        session.run(None, feed)
shares = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
started = time.perf_counter()
with ThreadPoolExecutor(clients) as pool:
    list(pool.map(work, shares))
elapsed = time.perf_counter() - started
print(json.dumps({"version": ort.__version__, "latency_ms": latency, "per_second": requests / elapsed}))
"#;

#[derive(Debug, Clone, Serialize)]
pub struct PythonFigures {
    pub onnxruntime_version: String,
    pub runs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub clients: usize,
    pub requests: usize,
    pub per_second: f64,
}

#[derive(Deserialize)]
struct ScriptOutput {
    version: String,
    latency_ms: Vec<f64>,
    per_second: f64,
}

pub fn measure(
    cache_dir: &Path,
    model: &PreparedModel,
    warmup: usize,
    clients: usize,
    requests: usize,
) -> Result<PythonFigures> {
    let shape: Vec<String> = model.spec.shape.iter().map(|d| d.to_string()).collect();
    let runs = model.spec.host_runs;
    let output = Command::new(crate::pypi::venv::python(cache_dir)?)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&model.frozen)
        .arg(&model.input_file)
        .arg(model.spec.input)
        .arg(shape.join(","))
        .args([warmup, runs, clients, requests].map(|n| n.to_string()))
        .output()
        .context("cannot run Python for the onnxruntime comparison")?;
    if !output.status.success() {
        bail!(
            "Python's onnxruntime failed on {}: {}",
            model.spec.name,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let parsed: ScriptOutput = serde_json::from_slice(&output.stdout)
        .context("the Python benchmark script printed no figures")?;
    Ok(PythonFigures {
        onnxruntime_version: parsed.version,
        runs,
        p50_ms: round3(percentile(&parsed.latency_ms, 50.0)),
        p99_ms: round3(percentile(&parsed.latency_ms, 99.0)),
        clients,
        requests,
        per_second: round3(parsed.per_second),
    })
}
