//! Model updates through the repository API, against a real `edge-runtime` on this machine
//! (tract, tiny-mlp frozen to [1, 16]) with its store in a temporary folder: a good update
//! under load (no request fails; the answers after it equal ONNX Runtime's on the new model),
//! refusals that leave the old version serving, signed uploads, the serving choice kept across
//! restarts, and a server killed mid-upload that comes back on the old version.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use edge_config::signing::{self, Digest, Sha512};
use edge_config::{Engine, ModelUpdates, RuntimeConfig};
use serde_json::{json, Value};

const TOKEN: &str = "update-token-0123456789";
const NAME: &str = "tiny-mlp";

/// A store, a token file and a key pair that outlive any one server.
struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    fn new() -> Device {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        Device { dir }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("models")
    }

    fn config(&self, adjust: impl FnOnce(&mut ModelUpdates)) -> RuntimeConfig {
        let model = tiny_mlp_model();
        let mut config = runtime_config(Engine::Tract, &[(NAME, &model)]);
        config.max_concurrency = 4;
        config.bearer_token_file = Some(self.dir.path().join("token").to_string_lossy().into());
        let mut updates = ModelUpdates {
            store: self.store().to_string_lossy().into(),
            max_model_bytes: 1 << 20,
            public_key_file: None,
            golden: None,
        };
        adjust(&mut updates);
        config.model_updates = Some(updates);
        config
    }

    fn start(&self) -> Server {
        Server::start(self.config(|_| {}))
    }
}

fn request(seed: u64) -> Value {
    json!({"inputs": [{"name": "x", "shape": TINY_MLP_SHAPE, "datatype": "FP32",
        "data": pseudo_random(16, seed)}]})
}

fn authed(
    request: ureq::RequestBuilder<ureq::typestate::WithBody>,
) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
    request.header("Authorization", format!("Bearer {TOKEN}"))
}

/// (status, probs) of one inference.
fn infer(agent: &ureq::Agent, server: &Server, seed: u64) -> (u16, Vec<f64>) {
    let response = authed(agent.post(server.url(&format!("/v2/models/{NAME}/infer"))))
        .send(serde_json::to_vec(&request(seed)).unwrap())
        .unwrap();
    let (status, body) = json_of(response);
    let probs = body["outputs"][0]["data"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_f64().unwrap()).collect())
        .unwrap_or_default();
    (status, probs)
}

fn serving_version(agent: &ureq::Agent, server: &Server) -> String {
    let response = agent
        .get(server.url(&format!("/v2/models/{NAME}")))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    let (status, body) = json_of(response);
    assert_eq!(status, 200, "{body}");
    body["versions"][0].as_str().unwrap().to_string()
}

/// POST .../load with `bytes`; (status, answer).
fn load(
    agent: &ureq::Agent,
    server: &Server,
    bytes: &[u8],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = authed(agent.post(server.url(&format!("/v2/repository/models/{NAME}/load"))))
        .header("Content-Type", "application/octet-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    json_of(request.send(bytes).unwrap())
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn v2_bytes() -> Vec<u8> {
    std::fs::read(tiny_mlp_v2_model()).unwrap()
}

#[test]
fn a_good_update_swaps_under_load_and_answers_like_onnx_runtime() {
    let device = Device::new();
    let server = Arc::new(device.start());
    let agent = client();
    let old = infer(&agent, &server, 5).1;
    // The host's real ONNX Runtime on the new model: the answers the device must give after.
    let v2 = tiny_mlp_v2_model();
    let reference = Server::start(runtime_config(Engine::Onnxruntime, &[(NAME, &v2)]));
    let want: Vec<Vec<f64>> = (0..8)
        .map(|seed| infer(&agent, &reference, seed).1)
        .collect();
    assert!(
        max_diff(&old, &infer(&agent, &reference, 5).1) > 1e-3,
        "v2 must answer differently"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let (server, stop, sent, failed) =
                (server.clone(), stop.clone(), sent.clone(), failed.clone());
            std::thread::spawn(move || {
                let agent = client();
                let mut seed = c;
                while !stop.load(Ordering::Relaxed) {
                    let (status, probs) = infer(&agent, &server, seed % 8);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if status != 200 || probs.len() != 4 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    seed += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (status, answer) = load(&agent, &server, &v2_bytes(), &[]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| c.join().unwrap());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["version"], "2", "{answer}");
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(sent > 20, "only {sent} requests during the swap");
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the swap"
    );

    assert_eq!(serving_version(&agent, &server), "2");
    for (seed, want) in want.iter().enumerate() {
        let (status, got) = infer(&agent, &server, seed as u64);
        assert_eq!(status, 200);
        let diff = max_diff(&got, want);
        assert!(
            diff < 1e-5,
            "seed {seed}: {diff} from ONNX Runtime on the new model"
        );
    }
    let current = std::fs::read_to_string(device.store().join(NAME).join("current")).unwrap();
    assert!(current.starts_with("2 "), "{current:?}");
    assert!(device.store().join(NAME).join("2/model.onnx").exists());
}

#[test]
fn refusals_name_why_and_the_old_version_keeps_serving() {
    let device = Device::new();
    let server = device.start();
    let agent = client();
    let before = infer(&agent, &server, 3).1;
    let refused = |bytes: &[u8], headers: &[(&str, &str)], status: u16, why: &str| {
        let (got, answer) = load(&agent, &server, bytes, headers);
        let error = answer["error"].as_str().unwrap_or_default();
        assert_eq!(got, status, "{answer}");
        assert!(error.contains(why), "{error:?} does not say {why:?}");
        assert_eq!(serving_version(&agent, &server), "1", "after: {error}");
        assert_eq!(infer(&agent, &server, 3).1, before);
    };
    let mut corrupt = v2_bytes();
    corrupt.truncate(corrupt.len() / 2);
    refused(&corrupt, &[], 422, "does not load");
    refused(b"not a model at all", &[], 422, "does not load");
    let other = std::fs::read(small_model()).unwrap();
    refused(&other, &[], 422, "inputs are [\"a\", \"b\"]");
    refused(&[], &[], 400, "the body is empty");
    let (status, answer) = json_of(
        authed(agent.post(server.url(&format!("/v2/repository/models/{NAME}/load"))))
            .header("Content-Type", "application/json")
            .send(b"{}".as_slice())
            .unwrap(),
    );
    assert_eq!(status, 415, "{answer}");
    // Without the token, nothing.
    let (status, _) = json_of(
        agent
            .post(server.url(&format!("/v2/repository/models/{NAME}/load")))
            .header("Content-Type", "application/octet-stream")
            .send(v2_bytes())
            .unwrap(),
    );
    assert_eq!(status, 401);
    let (status, answer) = json_of(
        authed(agent.post(server.url("/v2/repository/models/other/load")))
            .header("Content-Type", "application/octet-stream")
            .send(v2_bytes())
            .unwrap(),
    );
    assert_eq!(status, 404, "{answer}");
    // Nothing the refusals wrote is left.
    let left: Vec<_> = std::fs::read_dir(device.store().join(NAME))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    drop(server);

    let small = Server::start(device.config(|u| u.max_model_bytes = 1000));
    let (status, answer) = load(&agent, &small, &v2_bytes(), &[]);
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("max_model_bytes = 1000"));
}

#[test]
fn a_golden_check_with_expected_outputs_refuses_other_answers() {
    let device = Device::new();
    let agent = client();
    let probe = device.start();
    let expected = infer(&agent, &probe, 9).1;
    drop(probe);
    let golden = |expect: Vec<f64>| edge_config::GoldenCheck {
        tolerance: 1e-4,
        inputs: vec![edge_config::GoldenTensor {
            name: "x".into(),
            data: pseudo_random(16, 9).into_iter().map(f64::from).collect(),
        }],
        expect: vec![edge_config::GoldenTensor {
            name: "probs".into(),
            data: expect,
        }],
    };
    // The factory model's own answer as the golden one: v2 answers otherwise, and is refused.
    let server = Server::start(device.config(|u| u.golden = Some(golden(expected.clone()))));
    let (status, answer) = load(&agent, &server, &v2_bytes(), &[]);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("golden inference gave output 'probs'"),
        "{answer}"
    );
    // The factory file itself passes (and becomes version 2).
    let (status, answer) = load(
        &agent,
        &server,
        &std::fs::read(tiny_mlp_model()).unwrap(),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["golden"]
            .as_str()
            .unwrap()
            .contains("probs = expected"),
        "{answer}"
    );
}

#[test]
fn signed_uploads_only_once_a_key_is_named() {
    let device = Device::new();
    let (secret, public) = signing::generate();
    let key_file = device.dir.path().join("model.pub");
    std::fs::write(&key_file, &public).unwrap();
    let server = Server::start(device.config(|u| {
        u.public_key_file = Some(key_file.to_string_lossy().into());
    }));
    let agent = client();
    let bytes = v2_bytes();
    let signature = |key: &str, bytes: &[u8]| {
        let mut digest = Sha512::new();
        digest.update(bytes);
        signing::sign(&signing::parse_secret_key(key).unwrap(), digest)
    };
    let (status, answer) = load(&agent, &server, &bytes, &[]);
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("not signed"),
        "{answer}"
    );
    let (other, _) = signing::generate();
    let (status, answer) = load(
        &agent,
        &server,
        &bytes,
        &[(signing::HEADER, &signature(&other, &bytes))],
    );
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{answer}"
    );
    let mut tampered = bytes.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let (status, _) = load(
        &agent,
        &server,
        &tampered,
        &[(signing::HEADER, &signature(&secret, &bytes))],
    );
    assert_eq!(status, 403);
    assert_eq!(serving_version(&agent, &server), "1");
    let (status, answer) = load(
        &agent,
        &server,
        &bytes,
        &[(signing::HEADER, &signature(&secret, &bytes))],
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(serving_version(&agent, &server), "2");
}

#[test]
fn a_restart_serves_current_and_falls_back_to_the_factory_version() {
    let device = Device::new();
    let agent = client();
    let server = device.start();
    let (status, answer) = load(&agent, &server, &v2_bytes(), &[]);
    assert_eq!(status, 200, "{answer}");
    let new = infer(&agent, &server, 4).1;
    // A second update: version 3, and version 2's folder goes.
    let (status, answer) = load(&agent, &server, &v2_bytes(), &[]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["version"], "3");
    assert!(!device.store().join(NAME).join("2").exists());
    drop(server); // SIGKILL

    let server = device.start();
    assert_eq!(serving_version(&agent, &server), "3");
    assert_eq!(infer(&agent, &server, 4).1, new);
    let (status, index) = json_of(
        authed(agent.post(server.url("/v2/repository/index")))
            .send(b"".as_slice())
            .unwrap(),
    );
    assert_eq!(status, 200);
    let states: Vec<(&str, &str)> = index
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["version"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("1", "UNAVAILABLE"), ("3", "READY")], "{index}");
    drop(server);

    // The file `current` names changed behind its back: the factory version serves.
    let file = device.store().join(NAME).join("3/model.onnx");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let server = device.start();
    assert_eq!(serving_version(&agent, &server), "1");

    // Unload returns to the factory version and keeps it across a restart.
    let (status, answer) = load(&agent, &server, &v2_bytes(), &[]);
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = json_of(
        authed(agent.post(server.url(&format!("/v2/repository/models/{NAME}/unload"))))
            .send(b"".as_slice())
            .unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(serving_version(&agent, &server), "1");
    drop(server);
    let server = device.start();
    assert_eq!(serving_version(&agent, &server), "1");
}

/// Sends the head of an upload and half its body, then returns the open connection.
fn half_an_upload(server: &Server, bytes: &[u8]) -> std::net::TcpStream {
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /v2/repository/models/{NAME}/load HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    stream.write_all(&bytes[..bytes.len() / 2]).unwrap();
    stream.flush().unwrap();
    stream
}

#[test]
fn killed_mid_upload_it_comes_back_on_the_old_version() {
    let device = Device::new();
    let agent = client();
    let server = device.start();
    let (status, _) = load(&agent, &server, &v2_bytes(), &[]);
    assert_eq!(status, 200);
    let serving = infer(&agent, &server, 6).1;
    let other = std::fs::read(tiny_mlp_model()).unwrap();
    let _upload = half_an_upload(&server, &other);
    // The half has reached the server's file before the kill.
    let incoming = device.store().join(NAME).join(".incoming/model.onnx");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&incoming).map_or(0, |m| m.len()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never reached {}",
            incoming.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server); // SIGKILL mid-upload

    let server = device.start();
    assert_eq!(serving_version(&agent, &server), "2");
    assert_eq!(infer(&agent, &server, 6).1, serving);
    assert!(!incoming.exists(), "the cut-off upload was left behind");
    // And the next upload gets the next version.
    let (status, answer) = load(&agent, &server, &other, &[]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["version"], "3");
}

#[test]
fn a_model_with_string_tensors_takes_no_updates_and_says_why() {
    let device = Device::new();
    let model = strings_model();
    let mut config = device.config(|_| {});
    let strings = runtime_config(Engine::Onnxruntime, &[(NAME, &model)]);
    config.engine = strings.engine;
    config.onnxruntime_library = strings.onnxruntime_library;
    config.models = strings.models;
    let server = Server::start(config);
    let (status, answer) = load(&client(), &server, &std::fs::read(&model).unwrap(), &[]);
    assert_eq!(status, 422, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("'words' is BYTES") && error.contains("takes no model updates"),
        "{error}"
    );
    assert_eq!(serving_version(&client(), &server), "1");
}

#[test]
fn updates_are_off_unless_configured() {
    let model = tiny_mlp_model();
    let server = Server::start(runtime_config(Engine::Tract, &[(NAME, &model)]));
    let (status, answer) = json_of(
        client()
            .post(server.url(&format!("/v2/repository/models/{NAME}/load")))
            .header("Content-Type", "application/octet-stream")
            .send(v2_bytes())
            .unwrap(),
    );
    assert_eq!(status, 404, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("model_updates = true"));
}
