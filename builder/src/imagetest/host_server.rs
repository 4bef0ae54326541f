//! edge-runtime on this machine: the host's real ONNX Runtime behind the same server code the
//! device runs (the glibc build of edge-runtime for this machine's arch), so checks compare like
//! with like over HTTP; and either engine for the benchmark's host figures.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use edge_config::{DeviceConfig, Engine, InitConfig, ModelConfig, RuntimeConfig, OPTIMISED_MARKER};

use crate::image::onnxruntime::{onnxruntime_library, LIBRARY_ENV};
use crate::imagetest::checks::InferClient;
use edge_config::Arch;

/// An edge-runtime running on this machine: the server code the device runs, for references
/// and benchmarks. Killed on drop.
pub struct HostServer {
    child: Child,
    /// Holds the config and log while the server runs.
    _dir: tempfile::TempDir,
    pub client: InferClient,
}

impl Drop for HostServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a host server serves, with which engine and threads.
pub struct HostServerSpec<'a> {
    pub engine: Engine,
    /// (name, dims-frozen ONNX file) of each model.
    pub models: &'a [(&'a str, &'a Path)],
    /// Intra-op threads per run.
    pub threads: usize,
    /// Requests served at once.
    pub max_concurrency: usize,
}

/// The host's real ONNX Runtime serving each (name, dims-frozen file) of `models`.
pub fn start_reference(cache_dir: &Path, models: &[(&str, &Path)]) -> Result<HostServer> {
    start_host_server(
        cache_dir,
        &HostServerSpec {
            engine: Engine::Onnxruntime,
            models,
            threads: 1,
            max_concurrency: 2,
        },
    )
}

/// Start an edge-runtime on this machine: for tract the static build the host arch's images
/// carry, for onnxruntime the glibc build through the host's own loader, with the wheel's
/// library (or [`LIBRARY_ENV`]'s).
pub fn start_host_server(cache_dir: &Path, spec: &HostServerSpec) -> Result<HostServer> {
    let host = host_arch()?;
    let (mut command, library) = match spec.engine {
        Engine::Tract => {
            let binaries = crate::image::device::device_binaries(host, Engine::Tract, cache_dir)?;
            (Command::new(binaries.runtime), None)
        }
        Engine::Onnxruntime => {
            let library = match std::env::var_os(LIBRARY_ENV) {
                Some(p) => PathBuf::from(p),
                None => onnxruntime_library(cache_dir, host)?,
            };
            // The binary names the image's private loader; here the host's own one runs it.
            let mut command = Command::new(host.glibc_loader().1);
            command.arg(crate::image::device::glibc_runtime(host)?);
            (command, Some(library))
        }
    };
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = DeviceConfig {
        system: None,
        hostname: "host".into(),
        init: InitConfig {
            modules: vec![],
            network: Default::default(),
            data: None,
            server_uid: 0,
            server_gid: 0,
            server_path: String::new(),
            server_args: vec![],
            debug_shell: false,
        },
        runtime: RuntimeConfig {
            engine: spec.engine,
            onnxruntime_library: library.map(|l| l.display().to_string()),
            listen: format!("127.0.0.1:{port}"),
            threads: spec.threads,
            max_body_bytes: Some(256 << 20),
            max_concurrency: spec.max_concurrency,
            bearer_token: None,
            bearer_token_file: None,
            start_plan: edge_config::Plan::Quick,
            limits: Default::default(),
            tls: None,
            model_updates: None,
            models: spec
                .models
                .iter()
                .map(|(name, path)| ModelConfig {
                    name: name.to_string(),
                    path: path.display().to_string(),
                    version: "1".into(),
                })
                .collect(),
        },
    };
    let config_path = dir.path().join("server.toml");
    std::fs::write(&config_path, config.to_toml())?;
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path)?;
    // Drop does not run when the builder is killed; the kernel then stops the server instead.
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let child = command
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let mut server = HostServer {
        child,
        client: InferClient::new(format!("http://127.0.0.1:{port}"), None),
        _dir: dir,
    };
    // Ready, and serving the plan it keeps: the server answers from a quick plan first
    // (edge-runtime's `start_plan`), and references and benchmarks want the optimised one.
    let optimised = |log: &str| log.matches(OPTIMISED_MARKER).count() >= spec.models.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if optimised(&log) && server.client.ready() {
            break;
        }
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "the host edge-runtime ({:?}) exited ({status}):\n{log}",
                spec.engine
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the host edge-runtime ({:?}) was not ready with its models optimised in 60 s:\n{log}",
                spec.engine
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(server)
}

pub fn host_arch() -> Result<Arch> {
    Arch::host().with_context(|| {
        format!(
            "no ONNX Runtime reference for host arch {}",
            std::env::consts::ARCH
        )
    })
}
