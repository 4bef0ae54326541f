//! The host's real ONNX Runtime behind the same server code the device runs (the glibc build
//! of edge-runtime for this machine's arch, engine = onnxruntime), so checks compare like with
//! like over HTTP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use edge_config::{DeviceConfig, Engine, InitConfig, ModelConfig, RuntimeConfig};

use crate::checks::InferClient;
use crate::onnxruntime::{onnxruntime_library, LIBRARY_ENV};
use crate::recipe::Arch;

pub struct ReferenceServer {
    child: Child,
    _dir: tempfile::TempDir,
    pub client: InferClient,
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start a host edge-runtime serving `model_file` as `name` with the real ONNX Runtime.
pub fn start_reference(cache_dir: &Path, name: &str, model_file: &Path) -> Result<ReferenceServer> {
    let host = host_arch()?;
    let library = match std::env::var_os(LIBRARY_ENV) {
        Some(p) => PathBuf::from(p),
        None => onnxruntime_library(cache_dir, host)?,
    };
    let server = crate::device::glibc_runtime(host)?;
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = DeviceConfig {
        hostname: "reference".into(),
        init: InitConfig {
            modules: vec![],
            network: Default::default(),
            data: None,
            server_uid: 0,
            server_gid: 0,
            server_path: server.display().to_string(),
            server_args: vec![],
            debug_shell: false,
        },
        runtime: RuntimeConfig {
            engine: Engine::Onnxruntime,
            onnxruntime_library: Some(library.display().to_string()),
            listen: format!("127.0.0.1:{port}"),
            threads: 1,
            max_body_bytes: 256 << 20,
            max_concurrency: 2,
            bearer_token: None,
            models: vec![ModelConfig {
                name: name.to_string(),
                path: model_file.display().to_string(),
                version: "1".into(),
            }],
        },
    };
    let config_path = dir.path().join("reference.toml");
    std::fs::write(&config_path, config.to_toml())?;
    let log = std::fs::File::create(dir.path().join("reference.log"))?;
    // Through the host's own loader: the binary names the image's private one.
    let child = Command::new(host.glibc_loader().1)
        .arg(&server)
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", server.display()))?;
    let mut reference = ReferenceServer {
        child,
        client: InferClient::new(format!("http://127.0.0.1:{port}"), None),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reference.client.ready() {
        if let Some(status) = reference.child.try_wait()? {
            let log = std::fs::read_to_string(reference._dir.path().join("reference.log"))
                .unwrap_or_default();
            bail!("the host reference server exited ({status}):\n{log}");
        }
        if Instant::now() > deadline {
            bail!("the host reference server did not become ready in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(reference)
}

fn host_arch() -> Result<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(Arch::X86_64),
        "aarch64" => Ok(Arch::Aarch64),
        other => bail!("no ONNX Runtime reference for host arch {other}"),
    }
}
