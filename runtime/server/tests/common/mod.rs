//! Shared by the integration tests and the bench: real fixtures (downloaded wheels, models frozen
//! with the `onnx` package) and a running `edge-runtime` process with an HTTP client.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use edge_config::{DeviceConfig, Engine, InitConfig, ModelConfig, NetworkConfig, RuntimeConfig};
use edgeimg_pypi::pinned::RAPIDOCR;
use edgeimg_test_support::wheels::{python, unpacked};
pub use edgeimg_test_support::{cache_dir, wheels::onnxruntime_library};
/// The PP-OCR cls model's input shape once frozen (tract needs concrete dims).
pub const CLS_SHAPE: [usize; 4] = [1, 3, 48, 192];
/// PP-OCRv4 det input once frozen: a 640x640 image (the probability map has the same size).
pub const DET_SHAPE: [usize; 4] = [1, 3, 640, 640];
/// PP-OCRv4 rec input once frozen: one 48x320 text line (PaddleOCR's `rec_image_shape`).
pub const REC_SHAPE: [usize; 4] = [1, 3, 48, 320];
/// tiny-mlp's input once frozen (batch 1).
pub const TINY_MLP_SHAPE: [usize; 2] = [1, 16];

fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(status.success(), "{command:?} failed: {status}");
}

/// A file name unique to this process and call (tests run in parallel threads), renamed into
/// place once complete.
fn temporary(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().expect("a file path").to_os_string();
    name.push(format!(".tmp{}-{n}", std::process::id()));
    path.with_file_name(name)
}

/// A model made by `tests/fixtures.py` (in the test venv, which has `onnx`).
/// `args` builds the script's arguments around the output path.
fn fixture_model(file: &str, args: impl FnOnce(&Path) -> Vec<std::ffi::OsString>) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures.py");
    python_model(file, |dest| {
        std::iter::once(script.into_os_string())
            .chain(args(dest))
            .collect()
    })
}

/// A model written by `python ARGS` in the test venv (built around the output path), cached in
/// ~/.cache/edgeimg/models/FILE.
fn python_model(file: &str, args: impl FnOnce(&Path) -> Vec<std::ffi::OsString>) -> PathBuf {
    let dest = cache_dir().join("models").join(file);
    if dest.exists() {
        return dest;
    }
    std::fs::create_dir_all(dest.parent().expect("has a parent"))
        .expect("creating the model cache");
    let scratch = temporary(&dest);
    run(Command::new(python()).args(args(&scratch)));
    std::fs::rename(&scratch, &dest).expect("moving the model into place");
    dest
}

/// Sets every input's and output's shape (in graph order) with onnx's own
/// `update_inputs_outputs_dims`, for models whose outputs have free non-batch dims, which
/// `fixtures.py freeze` refuses. The fixtures script supplies `ensure_onnx` and its checked,
/// atomic `save`. value_info is dropped: it is optional, and symbols left there (tiny-mlp's `N`)
/// would contradict the frozen inputs for tract.
const SET_DIMS: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import fixtures
fixtures.ensure_onnx()
import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims
src, dst, inputs, outputs = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
model = onnx.load(src)
weights = {t.name for t in model.graph.initializer}
names = lambda values: [v.name for v in values if v.name not in weights]
model = update_inputs_outputs_dims(model, dict(zip(names(model.graph.input), inputs)),
                                   dict(zip(names(model.graph.output), outputs)))
del model.graph.value_info[:]
fixtures.save(model, dst)
"#;

/// `source` with its inputs and outputs set to the given shapes, cached as FILE.
fn frozen_model(file: &str, source: &Path, inputs: &[&[usize]], outputs: &[&[usize]]) -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let json = |shapes: &[&[usize]]| serde_json::to_string(shapes).expect("JSON");
    python_model(file, |dest| {
        vec![
            "-c".into(),
            SET_DIMS.into(),
            tests.into(),
            source.into(),
            dest.into(),
            json(inputs).into(),
            json(outputs).into(),
        ]
    })
}

/// PP-OCR mobile v2.0 text-direction classifier from the rapidocr wheel, dims frozen to
/// [`CLS_SHAPE`].
pub fn cls_model() -> PathBuf {
    let source = unpacked(
        &RAPIDOCR,
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
    );
    let shape = CLS_SHAPE.map(|d| d.to_string()).join(",");
    fixture_model("ppocr_mobile_v2.0_cls_1x3x48x192.onnx", |dest| {
        vec!["freeze".into(), source.into(), dest.into(), shape.into()]
    })
}

/// PP-OCRv4 text detector from the rapidocr wheel, frozen to [`DET_SHAPE`] -> [1, 1, 640, 640].
pub fn det_model() -> PathBuf {
    let source = unpacked(
        &RAPIDOCR,
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
    );
    let [n, _, h, w] = DET_SHAPE;
    frozen_model(
        "ppocr_v4_det_1x3x640x640.onnx",
        &source,
        &[&DET_SHAPE],
        &[&[n, 1, h, w]],
    )
}

/// PP-OCRv4 text recogniser from the rapidocr wheel, frozen to [`REC_SHAPE`] -> [1, 40, 6625]
/// (one step per 8 pixels of width, 6625 character classes).
pub fn rec_model() -> PathBuf {
    let source = unpacked(
        &RAPIDOCR,
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
    );
    let [n, _, _, w] = REC_SHAPE;
    frozen_model(
        "ppocr_v4_rec_1x3x48x320.onnx",
        &source,
        &[&REC_SHAPE],
        &[&[n, w / 8, 6625]],
    )
}

/// The project's example model `tests/models/tiny-mlp.onnx`, frozen to [`TINY_MLP_SHAPE`].
pub fn tiny_mlp_model() -> PathBuf {
    frozen_project_model("tiny-mlp")
}

/// Its update `tests/models/tiny-mlp-v2.onnx` (other weights), frozen the same way.
pub fn tiny_mlp_v2_model() -> PathBuf {
    frozen_project_model("tiny-mlp-v2")
}

/// `tests/models/STEM.onnx` frozen to [`TINY_MLP_SHAPE`]. The cache name carries a hash of the
/// source, so regenerating the model refreshes the copy.
fn frozen_project_model(stem: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/models")
        .join(format!("{stem}.onnx"));
    let bytes =
        std::fs::read(&source).unwrap_or_else(|e| panic!("reading {}: {e}", source.display()));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let file = format!("{stem}_1x16_{:016x}.onnx", hasher.finish());
    frozen_model(
        &file,
        &source,
        &[&TINY_MLP_SHAPE],
        &[&[TINY_MLP_SHAPE[0], 4]],
    )
}

/// A small two-input model: `sum = relu(a + float(b)) * [0.5, 1, 2]`, `positive = a > 0`,
/// with a: FP32 [2,3], b: INT64 [2,3].
pub fn small_model() -> PathBuf {
    fixture_model("edge_small_v1.onnx", |dest| {
        vec!["small".into(), dest.into()]
    })
}

/// `z = x + y` with free dims (x: FP32 [n], y: FP32 [m]): the engine itself fails when n != m
/// (and n, m != 1). Only the onnxruntime engine loads it (tract needs concrete dims).
pub fn add_model() -> PathBuf {
    fixture_model("edge_add_v1.onnx", |dest| vec!["add".into(), dest.into()])
}

/// `y = relu(h) * [0.5, 1, 2]` with h and y FP16 [2, 3].
pub fn half_model() -> PathBuf {
    fixture_model("edge_half_v1.onnx", |dest| vec!["half".into(), dest.into()])
}

/// `y = bf16(float(x) * [0.5, 1, 2])` with x and y BF16 [2, 3].
pub fn bfloat_model() -> PathBuf {
    fixture_model("edge_bfloat_v1.onnx", |dest| {
        vec!["bfloat".into(), dest.into()]
    })
}

/// ai.onnx.ml `LabelEncoder` both ways, as `fixtures.py strings` makes it: `words` (BYTES
/// [n]) -> `ids` (INT64 [n], -1 for an unknown word), `codes` (INT64 [m]) -> `names` (BYTES
/// [m], `<unk>` for an unknown id), and `echo`, the words unchanged.
pub fn strings_model() -> PathBuf {
    fixture_model("edge_strings_v1.onnx", |dest| {
        vec!["strings".into(), dest.into()]
    })
}

/// What the host's ONNX Runtime (Python's, from the pinned wheel) answers on `model` for
/// `inputs` (`{name: [values]}`, each 1-D): `{output: [values]}`.
pub fn host_onnxruntime(model: &Path, inputs: &serde_json::Value) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("inputs.json");
    std::fs::write(&file, inputs.to_string()).expect("writing the inputs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures.py");
    let args = [model, file.as_path()].map(|p| p.to_str().expect("a UTF-8 path"));
    let stdout = pinned_python(&script, &["infer", args[0], args[1]]);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: fixtures.py infer said {stdout}"))
}

/// Deterministic pseudo-random values in [-1, 1) (an LCG: tests need repeatable inputs, not quality).
pub fn pseudo_random(count: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A device config around `runtime`, as the builder would write it.
pub fn device_config(runtime: RuntimeConfig) -> DeviceConfig {
    DeviceConfig {
        system: None,
        hostname: "edge-test".into(),
        init: InitConfig {
            modules: vec![],
            network: NetworkConfig::default(),
            data: None,
            server_uid: 1000,
            server_gid: 1000,
            server_path: "/usr/bin/edge-runtime".into(),
            server_args: vec![],
            debug_shell: false,
        },
        runtime,
    }
}

/// A runtime config serving `models` (name, path) with `engine` on a free loopback port.
pub fn runtime_config(engine: Engine, models: &[(&str, &Path)]) -> RuntimeConfig {
    RuntimeConfig {
        engine,
        onnxruntime_library: (engine == Engine::Onnxruntime)
            .then(|| onnxruntime_library().to_string_lossy().into_owned()),
        listen: "127.0.0.1:0".into(),
        threads: 1,
        max_body_bytes: Some(1 << 20),
        max_concurrency: 2,
        bearer_token: None,
        bearer_token_file: None,
        start_plan: edge_config::Plan::Quick,
        limits: edge_config::Limits::default(),
        tls: None,
        model_updates: None,
        models: models
            .iter()
            .map(|(name, path)| ModelConfig {
                name: name.to_string(),
                path: path.to_string_lossy().into_owned(),
                version: "1".into(),
            })
            .collect(),
    }
}

/// A running `edge-runtime` process; killed on drop unless it already exited.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Everything it printed on stderr so far (also passed on to the test's own stderr).
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(runtime: RuntimeConfig) -> Server {
        Server::start_device(device_config(runtime))
    }

    /// A server of the whole device config (`[system]` too).
    pub fn start_device(device: DeviceConfig) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("device.toml");
        std::fs::write(&config, device.to_toml()).expect("writing device.toml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_edge-runtime"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting edge-runtime");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = BufReader::new(child.stderr.take().expect("piped stderr"));
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in pipe.lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("reading the server's first line");
        let address = line
            .split_whitespace()
            .nth(3)
            .unwrap_or_else(|| {
                let status = child.wait();
                panic!("edge-runtime did not start ({status:?}); its stdout said {line:?}")
            })
            .to_string();
        Server {
            child,
            base: format!("http://{address}"),
            stderr,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a line with `needle` on the server's stderr; panics after `timeout`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let stderr = self.stderr();
            if let Some(line) = stderr.lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} on the server's stderr in {timeout:?}:\n{stderr}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        run(Command::new("kill").args(["-TERM", &pid]));
        self.child.wait().expect("waiting for edge-runtime")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `tests/SCRIPT` with python3 and `args`; its stdout, or a panic with all it printed.
pub fn python_script(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    run_python(Path::new("python3"), &path, args)
}

/// Runs `script` with the test venv's python (the pinned wheels: onnx, onnxruntime,
/// tritonclient) and `args`; its stdout, or a panic with all it printed.
pub fn pinned_python(script: &Path, args: &[&str]) -> String {
    run_python(&python(), script, args)
}

/// Runs `script` with `interpreter` and `args`; its stdout, or a panic with all it printed.
pub fn run_python(interpreter: &Path, script: &Path, args: &[&str]) -> String {
    let output = Command::new(interpreter)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", interpreter.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A request in the binary tensor data extension: `header` (JSON), then `payload`. The
/// status, the response's JSON and the binary data after it.
pub fn post_binary(
    url: &str,
    header: &serde_json::Value,
    payload: &[u8],
) -> (u16, serde_json::Value, Vec<u8>) {
    let mut body = serde_json::to_vec(header).expect("JSON");
    let json_len = body.len();
    body.extend_from_slice(payload);
    let mut response = client()
        .post(url)
        .header("Inference-Header-Content-Length", &json_len.to_string())
        .header("Content-Type", "application/octet-stream")
        .send(body)
        .expect("POST");
    let status = response.status().as_u16();
    let header_len: usize = response
        .headers()
        .get("inference-header-content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap())
        .unwrap_or(usize::MAX);
    let bytes = response.body_mut().read_to_vec().unwrap();
    let split = header_len.min(bytes.len());
    let json = serde_json::from_slice(&bytes[..split]).expect("a JSON header");
    (status, json, bytes[split..].to_vec())
}

/// An HTTP client that returns 4xx/5xx responses instead of failing on them.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// (status, body as JSON) of a response.
pub fn json_of(mut response: ureq::http::Response<ureq::Body>) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().expect("a text body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: body {text:?}"));
    (status, json)
}

pub fn get(agent: &ureq::Agent, url: &str) -> (u16, serde_json::Value) {
    json_of(agent.get(url).call().expect("GET"))
}

pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    json_of(
        agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(serde_json::to_vec(body).expect("JSON"))
            .expect("POST"),
    )
}
