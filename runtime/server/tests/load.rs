//! Under load: many concurrent clients against a real edge-runtime process on loopback, with
//! hostile requests (garbage JSON, wrong shapes, unknown models, oversized bodies, bytes that
//! are not HTTP, headers and bodies trickled a byte a second, aborted connections, a wrong bearer token) between the good ones. Every good answer must
//! match the real ONNX Runtime's, every hostile request get its 4xx, the server stay up and
//! its memory level off. The figures are printed, not asserted. `edgeimg test` runs the same
//! load (the same function) against a booted device.

mod common;

use std::time::Duration;

use common::*;
use edge_config::Engine;
use edgeimg_load::{LoadSpec, Target};
use serde_json::json;

const CLIENTS: usize = 48;
const REQUESTS: usize = 3000;
const GARBAGE_EVERY: usize = 4;
const MAX_BODY: usize = 256 << 10;
/// Distinct inputs, so an answer handed to the wrong client would be caught.
const INPUTS: u64 = 8;

/// The server under load wants a token, so the wrong-token kind takes turns too.
const TOKEN: &str = "load-test-token";

fn target(server: &Server, token: Option<&str>) -> Target {
    Target {
        base: server.base.clone(),
        model: "tiny-mlp".into(),
        token: token.map(str::to_string),
    }
}

#[test]
fn many_clients_with_hostile_requests_all_answered_right_and_memory_levels_off() {
    let model = tiny_mlp_model();
    let mut config = runtime_config(Engine::Tract, &[("tiny-mlp", &model)]);
    config.max_body_bytes = Some(MAX_BODY);
    config.max_concurrency = 4;
    config.bearer_token = Some(TOKEN.into());
    // The slow kinds trickle a byte a second: cut off after a second, they keep the run short.
    config.limits.header_timeout_ms = 1000;
    config.limits.body_timeout_ms = 1000;
    let mut server = Server::start(config);
    let reference = Server::start(runtime_config(Engine::Onnxruntime, &[("tiny-mlp", &model)]));
    let bodies = (0..INPUTS)
        .map(|seed| {
            let request = json!({"inputs": [{"name": "x", "shape": TINY_MLP_SHAPE,
                "datatype": "FP32", "data": pseudo_random(16, seed)}]});
            serde_json::to_vec(&request).unwrap()
        })
        .collect();
    let good = edgeimg_load::reference_answers(&target(&reference, None), bodies).unwrap();

    let spec = LoadSpec {
        clients: CLIENTS,
        requests: REQUESTS,
        garbage_every: GARBAGE_EVERY,
        max_body_bytes: MAX_BODY,
        tolerance: 1e-4,
        time_limit: Duration::from_secs(180),
    };
    let report = edgeimg_load::run(&target(&server, Some(TOKEN)), &good, &spec).unwrap();
    eprintln!("host load (tract, tiny-mlp): {}", report.summary());
    let problems = report.problems();
    assert!(problems.is_empty(), "{problems:#?}\n{}", report.summary());
    assert_eq!(report.requests, REQUESTS);
    assert_eq!(report.hostile.len(), 9, "every hostile kind took turns");

    assert!(
        matches!(server.child.try_wait(), Ok(None)),
        "edge-runtime exited under load"
    );
    assert_eq!(get(&client(), &server.url("/v2/health/ready")).0, 200);
    // The gauge is the server's own memory: /proc says the same (within what a moment changes).
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let proc_rss = edge_runtime::metrics::resident_bytes(&status).unwrap();
    let gauge = report.memory.end;
    assert!(
        proc_rss.abs_diff(gauge) < (gauge / 5).max(1 << 20),
        "/proc says {proc_rss} bytes, the gauge said {gauge}"
    );
}
