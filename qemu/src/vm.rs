//! Starting QEMU and the handle to a running guest.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::accel::{self, AccelChoice};
use crate::args::{qemu_args, RunPaths};
use crate::binary::find_qemu;
use crate::board::MachineProfile;
use crate::console::{Console, GuestFailure};
use crate::error::{Error, Result, ERROR_TAIL_LINES};
use crate::port::{free_local_port, is_port_conflict};
use crate::qmp::Qmp;
use crate::ready::Ready;
use crate::spec::{BootSpec, ConsoleMode, SpawnOptions};

/// How long QEMU gets to set the machine up and answer on QMP.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at a forwarding port before giving up (each retry follows a lost race).
const PORT_ATTEMPTS: usize = 5;
/// How long the rest of a kernel panic report may take to print.
const PANIC_REPORT_GRACE: Duration = Duration::from_secs(2);
/// On boards whose power-off only halts: how long after `EDGEIMG-POWEROFF` the kernel gets
/// to finish (it prints `reboot: ...`) before the harness ends QEMU.
const HALT_GRACE: Duration = Duration::from_secs(3);
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
        let qemu = find_qemu(profile.arch())?;
        let accel = match opts.accel {
            Some(accel) => AccelChoice {
                accel,
                reason: "chosen by the caller".into(),
            },
            None => accel::choose(profile.arch(), &qemu)?,
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
            api_addr: self
                .run
                .host_port
                .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            log_path,
            started,
            ready: None,
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

/// How to ask the guest to power off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// Press the power button (QMP `system_powerdown`: ACPI on x86, GPIO key on arm `virt`).
    PowerButton,
    /// Press ctrl-alt-delete (QMP `send-key`); with `/proc/sys/kernel/ctrl-alt-del` = 0 the
    /// kernel turns it into SIGINT for PID 1. Needs a keyboard (x86 q35 has one).
    CtrlAltDelete,
    /// Type this on the serial console (headless modes only).
    ConsoleInput(String),
    /// The caller already asked the guest (e.g. through its API); just wait.
    AlreadyRequested,
}

/// A guest that QEMU is running. Dropping it kills QEMU.
#[derive(Debug)]
pub struct RunningVm {
    child: Child,
    stdin: Option<ChildStdin>,
    console: Arc<Console>,
    reader: Option<JoinHandle<()>>,
    stderr_reader: Option<JoinHandle<()>>,
    stderr: Arc<Mutex<String>>,
    qmp: Option<Qmp>,
    profile: MachineProfile,
    accel: AccelChoice,
    api_addr: Option<SocketAddr>,
    log_path: PathBuf,
    started: Instant,
    ready: Option<Ready>,
    /// Holds the QMP socket, UEFI vars and default console log; removed on drop.
    dir: Option<TempDir>,
}

impl RunningVm {
    /// Wait for the device's `EDGEIMG-READY` line. Fails at once on `EDGEIMG-ERROR`, a kernel
    /// panic or QEMU exiting, and after `timeout` otherwise; errors carry the console tail.
    pub fn wait_for_ready(&mut self, timeout: Duration) -> Result<Ready> {
        if let Some(ready) = &self.ready {
            return Ok(ready.clone());
        }
        let deadline = Instant::now() + timeout;
        let console = Arc::clone(&self.console);
        let mut state = console.lock();
        loop {
            if let Some((line, seen)) = &state.ready {
                let line = line.clone().map_err(|reason| Error::BadReadyLine {
                    line: state.tail(1),
                    reason,
                })?;
                let ready = Ready {
                    line,
                    host_boot_to_ready: seen.duration_since(self.started),
                    accel: self.accel.accel,
                };
                self.ready = Some(ready.clone());
                return Ok(ready);
            }
            if let Some((failure, seen)) = &state.failure {
                if state.failure_complete || seen.elapsed() >= PANIC_REPORT_GRACE || state.closed {
                    let console_tail = state.tail(ERROR_TAIL_LINES);
                    return Err(match failure.clone() {
                        GuestFailure::Panic(line) => Error::KernelPanic { line, console_tail },
                        GuestFailure::Error(line) => Error::GuestError { line, console_tail },
                    });
                }
            }
            if state.closed {
                drop(state);
                return Err(self.exited_error());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::ReadyTimeout {
                    timeout,
                    log: self.log_path.clone(),
                    console_tail: state.tail(ERROR_TAIL_LINES),
                });
            }
            state = console.wait(state, (deadline - now).min(Duration::from_millis(250)));
        }
    }

    /// The result of [`wait_for_ready`](Self::wait_for_ready) once it succeeded.
    pub fn ready(&self) -> Option<&Ready> {
        self.ready.as_ref()
    }

    /// `127.0.0.1:PORT` forwarded to the spec's `forward_port` in the guest.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    pub fn console_log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `n` console lines.
    pub fn console_tail(&self, n: usize) -> String {
        self.console.tail(n)
    }

    /// The accelerator in use and why it was picked.
    pub fn accel(&self) -> &AccelChoice {
        &self.accel
    }

    pub fn profile(&self) -> &MachineProfile {
        &self.profile
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Run a QMP command (e.g. `query-status`) and return its result.
    pub fn qmp(
        &mut self,
        command: &str,
        arguments: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        self.qmp_client()?.execute(command, arguments)
    }

    /// Type `text` on the guest's serial console.
    pub fn write_console(&mut self, text: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            Error::BadSpec("the console is the terminal in interactive mode".into())
        })?;
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| Error::io("writing to the guest console", e))
    }

    /// Press the power button and wait up to `timeout` for QEMU to exit.
    pub fn powerdown(&mut self, timeout: Duration) -> Result<Duration> {
        self.shutdown(ShutdownRequest::PowerButton, timeout)
    }

    /// Ask the guest to power off and wait up to `timeout` for QEMU to exit; returns how long
    /// that took. On boards whose power-off only halts, the harness quits QEMU after the
    /// guest's `EDGEIMG-POWEROFF` line. If the guest does not finish in time QEMU is killed
    /// and the error carries the console tail.
    pub fn shutdown(&mut self, request: ShutdownRequest, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        let deadline = start + timeout;
        let sent = match request {
            ShutdownRequest::PowerButton => self.qmp("system_powerdown", None).map(drop),
            ShutdownRequest::CtrlAltDelete => self.qmp_client()?.send_ctrl_alt_delete(),
            ShutdownRequest::ConsoleInput(text) => self.write_console(&text),
            ShutdownRequest::AlreadyRequested => Ok(()),
        };
        if let Err(e) = sent {
            // A guest that powered off by itself has nothing left to ask.
            if !self.has_exited()? {
                return Err(e);
            }
        }
        let mut quit_sent = false;
        loop {
            if self.has_exited()? {
                self.join_readers();
                return Ok(start.elapsed());
            }
            let state = self.console.lock();
            let halted = match state.poweroff_seen {
                Some(seen) => state.kernel_stopped || seen.elapsed() >= HALT_GRACE,
                None => false,
            };
            if Instant::now() >= deadline {
                let console_tail = state.tail(ERROR_TAIL_LINES);
                drop(state);
                self.kill();
                return Err(Error::ShutdownTimeout {
                    timeout,
                    console_tail,
                });
            }
            let state = self.console.wait(state, Duration::from_millis(100));
            drop(state);
            if halted && self.profile.poweroff_only_halts && !quit_sent {
                quit_sent = true;
                // QEMU may exit before it answers; has_exited() is what counts.
                let _ = self.qmp("quit", None);
            }
        }
    }

    /// Wait for QEMU to exit by itself (interactive runs: the user quits or the guest powers
    /// off).
    pub fn wait(&mut self) -> Result<ExitStatus> {
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io("waiting for QEMU", e))?;
        self.join_readers();
        Ok(status)
    }

    /// Kill QEMU now and reap it.
    pub fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.join_readers();
    }

    fn has_exited(&mut self) -> Result<bool> {
        self.child
            .try_wait()
            .map(|s| s.is_some())
            .map_err(|e| Error::io("checking on QEMU", e))
    }

    fn join_readers(&mut self) {
        for handle in [self.reader.take(), self.stderr_reader.take()]
            .into_iter()
            .flatten()
        {
            let _ = handle.join();
        }
    }

    fn qmp_client(&mut self) -> Result<&mut Qmp> {
        self.qmp
            .as_mut()
            .ok_or_else(|| Error::Qmp("not connected".into()))
    }

    /// Connect to QMP; QEMU answering means the machine (and any port forward) is set up.
    fn connect_qmp(&mut self, socket: &Path) -> Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if self.has_exited()? {
                return Err(self.exited_error());
            }
            if socket.exists() {
                if let Ok(qmp) = Qmp::connect(socket) {
                    self.qmp = Some(qmp);
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(Error::Qmp(format!(
                    "QEMU did not answer on {} within {STARTUP_TIMEOUT:?}",
                    socket.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The error for a QEMU that exited on its own; waits for it and for its output.
    fn exited_error(&mut self) -> Error {
        let status = match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("unknown status: {e}"),
        };
        self.join_readers();
        Error::QemuExited {
            status,
            stderr: self
                .stderr
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            console_tail: self.console.tail(ERROR_TAIL_LINES),
        }
    }
}

impl Drop for RunningVm {
    /// Never leave a QEMU behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
