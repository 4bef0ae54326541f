//! Starting QEMU: validate the spec, pick the accelerator, prepare firmware, choose a
//! forwarding port and retry when another process took it first.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tempfile::TempDir;

use crate::accel::{self, AccelChoice};
use crate::args::{qemu_args, RunPaths};
use crate::binary::find_qemu_for;
use crate::board::MachineProfile;
use crate::console::Console;
use crate::error::{Error, Result};
use crate::port::{free_local_port, is_port_conflict};
use crate::relay::ApiRelay;
use crate::spec::{BootSpec, ConsoleMode, SpawnOptions};
use crate::vm::RunningVm;

/// Attempts at a forwarding port before giving up (each retry follows a lost race).
const PORT_ATTEMPTS: usize = 5;
/// QEMU's stderr kept for error messages.
const STDERR_KEPT: usize = 16 * 1024;

/// Starts guests.
pub struct Qemu;

impl Qemu {
    /// Boot `spec` and return once QEMU has set the machine up (not when the guest is ready:
    /// see [`RunningVm::wait_for_ready`]).
    pub fn spawn(spec: &BootSpec, opts: &SpawnOptions) -> Result<RunningVm> {
        let profile = spec.board.profile();
        spec.validate(&profile)?;
        let qemu = find_qemu_for(&profile)?;
        let accel = match opts.accel {
            Some(accel) => AccelChoice {
                accel,
                reason: "chosen by the caller".into(),
            },
            None => accel::choose(&profile, &qemu, spec.kernel.as_deref())?,
        };
        let dir = tempfile::Builder::new()
            .prefix("edgeimg-qemu-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory for QEMU", e))?;
        let uefi_vars = prepare_uefi_vars(spec, &profile, dir.path())?;
        let mut dir = Some(dir);
        for attempt in 1..=PORT_ATTEMPTS {
            let run = RunPaths {
                qmp_socket: dir
                    .as_ref()
                    .expect("kept until success")
                    .path()
                    .join("qmp.sock"),
                uefi_vars: uefi_vars.clone(),
                host_port: match spec.forward_port {
                    Some(_) => Some(free_local_port()?),
                    None => None,
                },
            };
            let launch = Launch {
                qemu: &qemu,
                spec,
                profile: &profile,
                accel: &accel,
                opts,
                run,
            };
            match launch.start(&mut dir) {
                Err(Error::QemuExited { stderr, .. })
                    if is_port_conflict(&stderr) && attempt < PORT_ATTEMPTS =>
                {
                    tracing::debug!("forwarding port was taken, retrying: {stderr}");
                }
                other => return other,
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// Copy the UEFI variable store template for a firmware boot.
fn prepare_uefi_vars(
    spec: &BootSpec,
    profile: &MachineProfile,
    dir: &Path,
) -> Result<Option<PathBuf>> {
    let Some(uefi) = profile.uefi.as_ref().filter(|_| spec.kernel.is_none()) else {
        return Ok(None);
    };
    for file in [&uefi.code, &uefi.vars_template] {
        if !file.is_file() {
            return Err(Error::BadSpec(format!(
                "UEFI firmware {} is missing; install it with `apt-get install -y {}`",
                file.display(),
                uefi.package
            )));
        }
    }
    let vars = dir.join("uefi-vars.fd");
    std::fs::copy(&uefi.vars_template, &vars)
        .map_err(|e| Error::io(format!("copying {}", uefi.vars_template.display()), e))?;
    Ok(Some(vars))
}

/// One attempt at starting QEMU.
struct Launch<'a> {
    qemu: &'a Path,
    spec: &'a BootSpec,
    profile: &'a MachineProfile,
    accel: &'a AccelChoice,
    opts: &'a SpawnOptions,
    run: RunPaths,
}

impl Launch<'_> {
    /// Start QEMU; on success the VM takes ownership of the temporary directory.
    fn start(self, dir: &mut Option<TempDir>) -> Result<RunningVm> {
        let tmp = dir.as_ref().expect("present until a VM owns it").path();
        let log_path = match &self.opts.console_log {
            Some(path) => path.clone(),
            None => tmp.join("console.log"),
        };
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Error::io(format!("creating console log {}", log_path.display()), e))?;
        let _ = std::fs::remove_file(&self.run.qmp_socket);
        let args = qemu_args(
            self.spec,
            self.profile,
            self.accel.accel,
            self.opts.console,
            &self.run,
        );
        tracing::debug!("starting {} {}", self.qemu.display(), args.join(" "));
        let interactive = self.opts.console == ConsoleMode::Interactive;
        let started = Instant::now();
        let mut child = Command::new(self.qemu)
            .args(&args)
            .stdin(if interactive {
                Stdio::inherit()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", self.qemu.display()), e))?;
        let console = Arc::new(Console::default());
        let stdout = child.stdout.take().expect("stdout is piped");
        let tee = self.opts.console != ConsoleMode::Headless;
        let reader = console.spawn_reader(stdout, log, tee);
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = spawn_stderr_reader(
            child.stderr.take().expect("stderr is piped"),
            Arc::clone(&stderr),
            interactive,
        );
        let mut vm = RunningVm {
            stdin: child.stdin.take(),
            child,
            console,
            reader: Some(reader),
            stderr_reader: Some(stderr_reader),
            stderr,
            qmp: None,
            profile: self.profile.clone(),
            accel: self.accel.clone(),
            api: self
                .run
                .host_port
                .map(|port| {
                    ApiRelay::start(
                        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                        self.opts.api_port,
                    )
                })
                .transpose()?,
            netdev: self
                .profile
                .nic
                .map(|_| crate::args::netdev(self.spec, &self.run)),
            log_path,
            started,
            ready: None,
            next_line: 0,
            dir: None,
        };
        vm.connect_qmp(&self.run.qmp_socket)?;
        vm.dir = dir.take();
        Ok(vm)
    }
}

fn spawn_stderr_reader(
    mut source: impl Read + Send + 'static,
    kept: Arc<Mutex<String>>,
    tee: bool,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = source.read(&mut buf) {
            if tee {
                let _ = std::io::stderr().write_all(&buf[..n]);
            }
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            kept.push_str(&String::from_utf8_lossy(&buf[..n]));
            if kept.len() > STDERR_KEPT {
                let cut = kept.len() - STDERR_KEPT;
                let cut = (cut..kept.len())
                    .find(|&i| kept.is_char_boundary(i))
                    .unwrap_or(kept.len());
                kept.drain(..cut);
            }
        }
    })
}
