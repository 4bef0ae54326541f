//! Attacks from the LAN, reproduced against a real edge-runtime process on loopback (the same
//! code, `edgeimg_load::attack`, runs them against a booted device in `edgeimg test`):
//! - 8 x max_concurrency slow clients trickle their headers or bodies one byte a second, for
//!   longer than any timeout, while a normal client must get every answer within its budget;
//! - 16 clients stream max_body-sized bodies of JSON zeros while the server's resident memory
//!   must stay under the bound stated here.
//!
//! `EDGE_ATTACK_SECS` sets how long each attack lasts (default 20 s, several times the
//! timeouts configured here; CI keeps the default, a longer run is a manual soak).

mod common;

use std::time::Duration;

use common::*;
use edge_config::Engine;
use edgeimg_load::attack::{self, FloodAttack, NormalClient, SlowAttack};
use edgeimg_load::{Good, Target};
use serde_json::json;

const MAX_CONCURRENCY: usize = 4;
/// The header and body timeouts here: the attacks last several times as long.
const TIMEOUT_MS: u64 = 2000;
/// What a normal client's request may take while an attack runs (14 ms at rest here).
const BUDGET: Duration = Duration::from_secs(2);

fn attack_time() -> Duration {
    let secs = std::env::var("EDGE_ATTACK_SECS")
        .ok()
        .map(|s| s.parse().expect("EDGE_ATTACK_SECS is a number of seconds"))
        .unwrap_or(20);
    Duration::from_secs(secs)
}

fn start(adjust: impl FnOnce(&mut edge_config::RuntimeConfig)) -> (Server, Target, Good) {
    let model = tiny_mlp_model();
    let mut config = runtime_config(Engine::Tract, &[("tiny-mlp", &model)]);
    config.max_concurrency = MAX_CONCURRENCY;
    config.max_body_bytes = None;
    config.limits.header_timeout_ms = TIMEOUT_MS;
    config.limits.body_timeout_ms = TIMEOUT_MS;
    adjust(&mut config);
    let server = Server::start(config);
    let target = Target {
        base: server.base.clone(),
        model: "tiny-mlp".into(),
        token: None,
    };
    let body = serde_json::to_vec(&json!({"inputs": [{"name": "x", "shape": TINY_MLP_SHAPE,
        "datatype": "FP32", "data": pseudo_random(16, 3)}]}))
    .unwrap();
    let good = edgeimg_load::reference_answers(&target, vec![body])
        .unwrap()
        .remove(0);
    (server, target, good)
}

#[test]
fn slow_clients_do_not_starve_a_normal_client() {
    let (server, target, good) = start(|_| {});
    let normal = NormalClient {
        target: &target,
        good: &good,
        tolerance: 1e-5,
        budget: BUDGET,
    };
    let rest = attack::at_rest(&normal, 5);
    let spec = SlowAttack {
        clients: 8 * MAX_CONCURRENCY,
        duration: attack_time(),
        pause: Duration::from_secs(1),
        budget: BUDGET,
        tolerance: 1e-5,
    };
    let report = attack::slow_clients(&target, &good, &spec).unwrap();
    eprintln!("at rest: {}", rest.summary(BUDGET));
    eprintln!("slow clients: {}", report.summary());
    assert!(server_alive(&server));
    let problems = report.problems();
    assert!(problems.is_empty(), "{problems:#?}\n{}", report.summary());
    assert!(report.endings.count("408") > 0, "{}", report.summary());
    // Headers are cut off at the header timeout, a trickled body at the body timeout plus its
    // few hundred bytes at body_min_rate.
    let cut_off = Duration::from_millis(TIMEOUT_MS) + Duration::from_secs(1);
    assert!(report.longest_hold <= cut_off, "{}", report.summary());
}

/// RSS stays under this while 16 clients stream bodies of zeros: 21 MiB at rest here.
const RSS_BOUND: u64 = 40 << 20;

fn flood(server: &Server, target: &Target, good: &Good, body_bytes: usize) {
    let spec = FloodAttack {
        clients: 16,
        body_bytes,
        duration: attack_time() / 2,
        budget: BUDGET,
        tolerance: 1e-5,
    };
    let report = attack::flood(target, good, &spec).unwrap();
    eprintln!("flood: {}", report.summary());
    assert!(server_alive(server));
    let problems = report.problems(RSS_BOUND);
    assert!(problems.is_empty(), "{problems:#?}\n{}", report.summary());
    assert!(report.peak_exact, "{}", report.summary());
    // The server's high-water mark is the kernel's own (VmHWM).
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let hwm = edge_runtime::metrics::peak_resident_bytes(&status).unwrap();
    assert!(hwm <= RSS_BOUND, "VmHWM {hwm} bytes");
}

#[test]
fn a_flood_of_zero_bodies_keeps_memory_bounded() {
    let (server, target, good) = start(|_| {});
    let derived = max_body(&server);
    // tiny-mlp's largest request (16 elements) with headroom: far below the old fixed 64 MiB.
    assert!(derived < 1 << 20, "{derived}");
    flood(&server, &target, &good, derived);
}

/// With the old fixed limit of 64 MiB configured, memory still does not follow the bodies:
/// decoding stops at the 17th element of the 16-element input.
#[test]
fn a_flood_of_64_mib_zero_bodies_keeps_memory_bounded() {
    let (server, target, good) = start(|c| c.max_body_bytes = Some(64 << 20));
    flood(&server, &target, &good, 64 << 20);
}

/// The body limit the server derived from its model.
fn max_body(server: &Server) -> usize {
    let (status, meta) = get(&client(), &server.url("/v2"));
    assert_eq!(status, 200, "{meta}");
    meta["limits"]["max_body_bytes"]
        .as_u64()
        .expect("limits.max_body_bytes") as usize
}

fn server_alive(server: &Server) -> bool {
    get(&client(), &server.url("/v2/health/ready")).0 == 200
}
