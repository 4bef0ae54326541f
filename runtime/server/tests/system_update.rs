//! System updates through the API, against a real `edge-runtime` on this machine (tract,
//! tiny-mlp): an artifact made by `write_artifact` as the builder makes it is streamed in,
//! checked and staged for init; every refusal leaves nothing staged; the start-up golden check
//! keeps a server whose model answers wrong from ever listening.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use edge_config::artifact::{write_artifact, ArtifactHead};
use edge_config::signing::{self, SigningKey};
use edge_config::system::{SystemConfig, FORMAT};
use edge_config::{DeviceConfig, Engine, GoldenCheck, GoldenTensor};
use serde_json::Value;

const TOKEN: &str = "system-token-0123456789";

/// A device's secrets and state folder, and the key its updates are signed with.
struct Device {
    dir: tempfile::TempDir,
    key: SigningKey,
}

impl Device {
    fn new() -> Device {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let (secret, public) = signing::generate();
        std::fs::write(dir.path().join("update.pub"), public).unwrap();
        Device {
            key: signing::parse_secret_key(&secret).unwrap(),
            dir,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("system")
    }

    fn inbox(&self, file: &str) -> PathBuf {
        self.state_dir().join("inbox").join(file)
    }

    fn system(&self) -> SystemConfig {
        SystemConfig {
            version: "1".into(),
            board: "qemu-x86_64".into(),
            arch: "x86_64".into(),
            boot_partuuid: "boot-uuid".into(),
            root_partuuids: ["root-a".into(), "root-b".into()],
            slot_bytes: 1 << 20,
            boot_slot_bytes: 1 << 16,
            updates: true,
            public_key_file: Some(self.dir.path().join("update.pub").to_string_lossy().into()),
            max_update_bytes: 1 << 21,
            state_dir: self.state_dir().to_string_lossy().into(),
            commit_deadline_secs: 180,
            golden_model: Some("tiny-mlp".into()),
            golden: Some(golden(vec![])),
        }
    }

    fn config(&self, adjust: impl FnOnce(&mut SystemConfig)) -> DeviceConfig {
        let model = tiny_mlp_model();
        let mut runtime = runtime_config(Engine::Tract, &[("tiny-mlp", &model)]);
        runtime.bearer_token_file = Some(self.dir.path().join("token").to_string_lossy().into());
        let mut system = self.system();
        adjust(&mut system);
        let mut device = device_config(runtime);
        device.system = Some(system);
        device
    }

    fn start(&self) -> Server {
        Server::start_device(self.config(|_| {}))
    }

    /// An update of version 2, as the builder writes it, adjusted by `head`.
    fn artifact(&self, head: impl FnOnce(&mut ArtifactHead)) -> Vec<u8> {
        let mut h = ArtifactHead {
            format: FORMAT,
            name: "edge".into(),
            version: "2".into(),
            board: "qemu-x86_64".into(),
            arch: "x86_64".into(),
            boot_partuuid: "boot-uuid".into(),
            root_partuuids: ["root-a".into(), "root-b".into()],
        };
        head(&mut h);
        let root: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let parts: Vec<(String, &[u8])> = vec![
            ("root.squashfs".into(), &root),
            ("boot/vmlinuz".into(), b"kernel"),
            (
                "slot-a/cmdline.txt".into(),
                b"root=PARTUUID=root-a edgeimg.slot=a",
            ),
            (
                "slot-b/cmdline.txt".into(),
                b"root=PARTUUID=root-b edgeimg.slot=b",
            ),
        ];
        let mut out = Vec::new();
        write_artifact(&mut out, h, &parts, &self.key).unwrap();
        out
    }

    fn nothing_left(&self) {
        assert!(!self.inbox("staged.update").exists(), "nothing is staged");
        assert!(
            !self.inbox("incoming.partial").exists(),
            "the partial upload is removed"
        );
    }
}

fn golden(expect: Vec<f64>) -> GoldenCheck {
    GoldenCheck {
        tolerance: 1e-4,
        inputs: vec![GoldenTensor {
            name: "x".into(),
            data: (0..16).map(f64::from).collect(),
        }],
        expect: if expect.is_empty() {
            vec![]
        } else {
            vec![GoldenTensor {
                name: "probs".into(),
                data: expect,
            }]
        },
    }
}

fn upload(server: &Server, bytes: &[u8], token: Option<&str>) -> (u16, Value) {
    let mut request = client().post(server.url("/v2/edgeimg/system/update"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    json_of(
        request
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .expect("POST"),
    )
}

fn status(server: &Server) -> (u16, Value) {
    json_of(
        client()
            .get(server.url("/v2/edgeimg/system"))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .call()
            .expect("GET"),
    )
}

fn error_of(answer: &Value) -> &str {
    answer["error"].as_str().unwrap_or_default()
}

#[test]
fn a_good_update_is_staged_byte_for_byte_and_reported() {
    let device = Device::new();
    let server = device.start();
    let (code, answer) = status(&server);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["version"], "1");
    assert_eq!(answer["board"], "qemu-x86_64");
    assert_eq!(answer["arch"], "x86_64");
    assert_eq!(answer["state"], Value::Null);
    assert_eq!(answer["update_in_progress"], false);

    let artifact = device.artifact(|_| {});
    let (code, answer) = upload(&server, &artifact, Some(TOKEN));
    assert_eq!(code, 202, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({"version": "2", "status": "installing"})
    );
    assert_eq!(
        std::fs::read(device.inbox("staged.update")).unwrap(),
        artifact
    );
    assert!(!device.inbox("incoming.partial").exists());

    // init's state.json, as the status reports it.
    std::fs::write(
        device.state_dir().join("state.json"),
        r#"{"committed": "a", "committed_version": "1"}"#,
    )
    .unwrap();
    let (_, answer) = status(&server);
    assert_eq!(answer["update_in_progress"], true);
    assert_eq!(answer["state"]["committed"], "a");
    assert_eq!(answer["slot"], "a");

    // One at a time: the staged update waits for init.
    let (code, answer) = upload(
        &server,
        &device.artifact(|h| h.version = "3".into()),
        Some(TOKEN),
    );
    assert_eq!(code, 409, "{answer}");
    assert!(
        error_of(&answer).contains("another update is in progress"),
        "{answer}"
    );
    assert_eq!(
        std::fs::read(device.inbox("staged.update")).unwrap(),
        artifact
    );
}

#[test]
fn updates_that_are_not_for_this_device_are_refused_and_leave_nothing() {
    let device = Device::new();
    let server = device.start();

    let (code, answer) = upload(
        &server,
        &device.artifact(|h| h.board = "rpi4".into()),
        Some(TOKEN),
    );
    assert_eq!(code, 422, "{answer}");
    assert!(
        error_of(&answer).contains("the update is for board rpi4, this device is qemu-x86_64: build it from this device's recipe"),
        "{answer}"
    );
    device.nothing_left();

    let (code, answer) = upload(
        &server,
        &device.artifact(|h| h.arch = "aarch64".into()),
        Some(TOKEN),
    );
    assert_eq!(code, 422, "{answer}");
    device.nothing_left();

    let stranger = Device::new();
    let (code, answer) = upload(&server, &stranger.artifact(|_| {}), Some(TOKEN));
    assert_eq!(code, 403, "{answer}");
    assert!(
        error_of(&answer).contains("signature does not verify"),
        "{answer}"
    );
    device.nothing_left();

    let mut corrupt = device.artifact(|_| {});
    let at = corrupt.len() / 2;
    corrupt[at] ^= 0xff;
    let (code, answer) = upload(&server, &corrupt, Some(TOKEN));
    assert_eq!(code, 400, "{answer}");
    assert!(error_of(&answer).contains("sha256"), "{answer}");
    device.nothing_left();

    let whole = device.artifact(|_| {});
    let (code, answer) = upload(&server, &whole[..whole.len() / 2], Some(TOKEN));
    assert_eq!(code, 400, "{answer}");
    assert!(error_of(&answer).contains("truncated"), "{answer}");
    device.nothing_left();

    let (code, answer) = upload(&server, b"not a tar at all", Some(TOKEN));
    assert_eq!(code, 400, "{answer}");
    device.nothing_left();

    // After all that, a good one still goes through.
    let (code, answer) = upload(&server, &device.artifact(|_| {}), Some(TOKEN));
    assert_eq!(code, 202, "{answer}");
}

#[test]
fn too_large_or_unauthenticated_uploads_are_refused() {
    let device = Device::new();
    let artifact = device.artifact(|_| {});
    let limit = artifact.len() as u64 - 1;
    let server = Server::start_device(device.config(|s| s.max_update_bytes = limit));
    let (code, answer) = upload(&server, &artifact, Some(TOKEN));
    assert_eq!(code, 413, "{answer}");
    assert!(error_of(&answer).contains("max_update_bytes"), "{answer}");
    device.nothing_left();

    let (code, _) = upload(&server, &artifact, None);
    assert_eq!(code, 401);
    let (code, _) = upload(&server, &artifact, Some("wrong-token"));
    assert_eq!(code, 401);
    let (code, _) = json_of(
        client()
            .get(server.url("/v2/edgeimg/system"))
            .call()
            .unwrap(),
    );
    assert_eq!(code, 401);
    device.nothing_left();
}

#[test]
fn the_routes_are_absent_when_updates_are_off() {
    let device = Device::new();
    let server = Server::start_device(device.config(|s| s.updates = false));
    let (code, _) = upload(&server, &device.artifact(|_| {}), Some(TOKEN));
    assert_eq!(code, 404);
    assert_eq!(status(&server).0, 404);
}

/// The server binary with `config`: its exit status and what it printed, when it exits by
/// itself.
fn run_to_exit(dir: &Path, config: &DeviceConfig) -> (Option<i32>, String) {
    let path = dir.join("device.toml");
    std::fs::write(&path, config.to_toml()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edge-runtime"))
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("edge-runtime did not exit within 60 s: it started serving");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (
        output.status.code(),
        text(&output.stdout) + &text(&output.stderr),
    )
}

#[test]
fn a_failed_start_up_golden_check_on_a_trial_exits_3_before_listening_and_says_why() {
    let device = Device::new();
    // Probabilities are never 5: the model cannot give this answer.
    let config = device.config(|s| s.golden = Some(golden(vec![5.0; 4])));
    // Outside a trial the check does not run: a committed system keeps serving.
    let server = Server::start_device(config.clone());
    assert_eq!(status(&server).0, 200);
    drop(server);

    std::fs::create_dir_all(device.state_dir()).unwrap();
    std::fs::write(
        device.state_dir().join("state.json"),
        r#"{"committed": "a", "committed_version": "1", "trial": {"slot": "b", "version": "2", "boots": 1}}"#,
    )
    .unwrap();
    let (code, stderr) = run_to_exit(device.dir.path(), &config);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("start-up golden check failed"), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
    let recorded = std::fs::read_to_string(device.inbox("start-failure.txt")).unwrap();
    assert!(
        recorded.contains("golden inference gave output 'probs'"),
        "{recorded}"
    );

    let config = device.config(|s| s.golden_model = Some("absent".into()));
    let (code, stderr) = run_to_exit(device.dir.path(), &config);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("'absent'"), "{stderr}");

    // A trial whose model answers (inputs only: every output finite) serves.
    let server = device.start();
    assert_eq!(status(&server).0, 200);
}

/// Writes `head` and then `body` on a fresh connection to the server, leaving it open.
fn raw(server: &Server, head: &str, body: &[u8]) -> std::net::TcpStream {
    use std::io::Write;
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    stream
}

fn status_line(stream: &mut std::net::TcpStream) -> String {
    use std::io::BufRead;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .unwrap();
    line
}

#[test]
fn one_upload_at_a_time_and_a_length_is_required() {
    let device = Device::new();
    let server = device.start();
    let artifact = device.artifact(|_| {});
    let head = format!(
        "POST /v2/edgeimg/system/update HTTP/1.1\r\nHost: device\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        artifact.len()
    );
    // Half an upload, still arriving.
    let first = raw(&server, &head, &artifact[..artifact.len() / 2]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !device.inbox("incoming.partial").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, answer) = upload(&server, &artifact, Some(TOKEN));
    assert_eq!(code, 409, "{answer}");
    assert!(
        error_of(&answer).contains("another update is in progress"),
        "{answer}"
    );
    drop(first);

    let mut chunked = raw(
        &server,
        &format!(
            "POST /v2/edgeimg/system/update HTTP/1.1\r\nHost: device\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        b"5\r\nhello\r\n0\r\n\r\n",
    );
    let line = status_line(&mut chunked);
    assert!(line.starts_with("HTTP/1.1 411"), "{line:?}");

    // The cut-off upload's partial file went with it; a whole one goes through.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (code, answer) = upload(&server, &artifact, Some(TOKEN));
        if code == 202 {
            break;
        }
        assert_eq!(code, 409, "{answer}");
        assert!(
            std::time::Instant::now() < deadline,
            "the cut-off upload still holds the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn updates_without_a_public_key_do_not_start() {
    let device = Device::new();
    let config = device.config(|s| s.public_key_file = None);
    let (code, printed) = run_to_exit(device.dir.path(), &config);
    assert_eq!(code, Some(1), "{printed}");
    assert!(
        printed.contains("system.updates = true needs system.public_key_file"),
        "{printed}"
    );
}
