//! The handle to a running guest: readiness, console, QMP control and shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::accel::AccelChoice;
use crate::board::MachineProfile;
use crate::console::{Console, GuestFailure};
use crate::error::{Error, Result, ERROR_TAIL_LINES};
use crate::qmp::Qmp;
use crate::ready::Ready;
use crate::relay::ApiRelay;

/// How long QEMU gets to set the machine up and answer on QMP.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the rest of a kernel panic report may take to print.
const PANIC_REPORT_GRACE: Duration = Duration::from_secs(2);
/// On boards whose power-off only halts: how long after `EDGEIMG-POWEROFF` the kernel gets
/// to finish (it prints `reboot: ...`) before the harness ends QEMU.
const HALT_GRACE: Duration = Duration::from_secs(3);
/// How long after a ctrl-alt-delete the harness presses it again while the guest has not
/// powered off: a guest may not hear the first press (the Pi 3's USB keyboard is bound after
/// READY under TCG, and a press before that is lost), and a guest already powering off has
/// blocked the signal a second press sends.
const PRESS_AGAIN: Duration = Duration::from_secs(2);

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
    pub(crate) child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) console: Arc<Console>,
    pub(crate) reader: Option<JoinHandle<()>>,
    pub(crate) stderr_reader: Option<JoinHandle<()>>,
    pub(crate) stderr: Arc<Mutex<String>>,
    pub(crate) qmp: Option<Qmp>,
    pub(crate) profile: MachineProfile,
    pub(crate) accel: AccelChoice,
    /// Where the guest's forwarded API port is reached (see `relay`).
    pub(crate) api: Option<ApiRelay>,
    /// The `-netdev` value of the guest's network, for a card plugged in later.
    pub(crate) netdev: Option<String>,
    pub(crate) log_path: PathBuf,
    pub(crate) started: Instant,
    pub(crate) ready: Option<Ready>,
    /// Where [`RunningVm::wait_for_next_line`] searches from: past the line it last returned.
    pub(crate) next_line: u64,
    /// Holds the QMP socket, UEFI vars and default console log; removed on drop.
    pub(crate) dir: Option<TempDir>,
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

    /// Wait for a console line containing `needle`, printed from now on (or, with
    /// `from_boot`, at any time since boot while the line is still among the kept ones).
    /// Fails when QEMU exits or after `timeout`.
    pub fn wait_for_line(
        &mut self,
        needle: &str,
        from_boot: bool,
        timeout: Duration,
    ) -> Result<String> {
        let cursor = if from_boot {
            0
        } else {
            self.console.lock().cursor()
        };
        self.wait_for_line_from(cursor, needle, timeout)
            .map(|(_, line)| line)
    }

    /// Wait for the next console line containing `needle`: the first one after the line this
    /// method last returned (from boot on the first call), so a test can read the console in
    /// order without missing a line printed before it asked. Returns the line from `needle`
    /// on (a kernel message may share it). Fails when QEMU exits or after `timeout`.
    pub fn wait_for_next_line(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let (at, line) = self.wait_for_line_from(self.next_line, needle, timeout)?;
        self.next_line = at + 1;
        let from = line.find(needle).unwrap_or(0);
        Ok(line[from..].to_string())
    }

    /// The first line at or after `cursor` containing `needle`, and its own cursor.
    fn wait_for_line_from(
        &mut self,
        cursor: u64,
        needle: &str,
        timeout: Duration,
    ) -> Result<(u64, String)> {
        let deadline = Instant::now() + timeout;
        let console = Arc::clone(&self.console);
        let mut state = console.lock();
        loop {
            if let Some(found) = state.find_from(cursor, needle) {
                return Ok(found);
            }
            if state.closed {
                drop(state);
                return Err(self.exited_error());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::ConsoleTimeout {
                    needle: needle.to_string(),
                    timeout,
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
        self.api.as_ref().map(ApiRelay::addr)
    }

    pub fn console_log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `n` console lines.
    pub fn console_tail(&self, n: usize) -> String {
        self.console.tail(n)
    }

    /// Whether the guest's kernel asked for a restart before QEMU ended: `-no-reboot` turns a
    /// reboot into an exit, so whoever plays the firmware boots it again.
    pub fn guest_restarted(&self) -> bool {
        self.console.tail(5).contains("reboot: Restarting system")
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

    /// Limits writes to the spec's disk number `disk` to `bytes_per_sec` (a slow card), so a
    /// test can cut the power while the guest is surely mid-write.
    pub fn throttle_writes(&mut self, disk: usize, bytes_per_sec: u64) -> Result<()> {
        self.qmp(
            "block_set_io_throttle",
            Some(serde_json::json!({
                "device": format!("disk{disk}"),
                "bps": 0, "bps_rd": 0, "bps_wr": bytes_per_sec,
                "iops": 0, "iops_rd": 0, "iops_wr": 0,
            })),
        )
        .map(drop)
    }

    /// Plugs a network card into the empty slot of a [`Nic::EmptySlot`](crate::Nic) boot, on
    /// the network (and port forward) the spec asked for.
    pub fn plug_nic(&mut self) -> Result<()> {
        let (Some(netdev), Some(model)) = (self.netdev.clone(), self.profile.nic) else {
            return Err(Error::BadSpec(
                "this board has no network card to plug in".into(),
            ));
        };
        // QMP's netdev_add takes the port forward only as structured data; the monitor's
        // command takes the same string as the command line.
        for command in [
            format!("netdev_add {netdev}"),
            format!("device_add {},bus=slot0", crate::args::nic_device(model)),
        ] {
            let answer = self.qmp(
                "human-monitor-command",
                Some(serde_json::json!({ "command-line": command })),
            )?;
            if let Some(text) = answer.as_str().filter(|t| !t.trim().is_empty()) {
                return Err(Error::BadSpec(format!("QEMU refused `{command}`: {text}")));
            }
        }
        Ok(())
    }

    /// Pulls the network card's cable (`false`) or plugs it back in.
    pub fn set_link(&mut self, up: bool) -> Result<()> {
        self.qmp(
            "set_link",
            Some(serde_json::json!({ "name": crate::args::NIC_ID, "up": up })),
        )
        .map(drop)
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

    /// Press the power button (ctrl-alt-del on boards that have none) and wait up to
    /// `timeout` for QEMU to exit.
    pub fn powerdown(&mut self, timeout: Duration) -> Result<Duration> {
        let request = match self.profile.keyboard {
            Some(_) => ShutdownRequest::CtrlAltDelete,
            None => ShutdownRequest::PowerButton,
        };
        self.shutdown(request, timeout)
    }

    /// Ask the guest to power off and wait up to `timeout` for QEMU to exit; returns how long
    /// that took. On boards whose power-off only halts, the harness quits QEMU after the
    /// guest's `EDGEIMG-POWEROFF` line. If the guest does not finish in time QEMU is killed
    /// and the error carries the console tail.
    pub fn shutdown(&mut self, request: ShutdownRequest, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        let deadline = start + timeout;
        let press_again = request == ShutdownRequest::CtrlAltDelete;
        self.ask_to_power_off(request)?;
        let mut pressed = Instant::now();
        let mut quit_sent = false;
        loop {
            if self.has_exited()? {
                self.join_readers();
                return Ok(start.elapsed());
            }
            let powering_off = self.console.lock().poweroff_seen.is_some();
            if press_again && !powering_off && pressed.elapsed() >= PRESS_AGAIN {
                self.ask_to_power_off(ShutdownRequest::CtrlAltDelete)?;
                pressed = Instant::now();
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

    /// Send `request` to the guest; a guest that powered off by itself meanwhile needs none.
    fn ask_to_power_off(&mut self, request: ShutdownRequest) -> Result<()> {
        let sent = match request {
            ShutdownRequest::PowerButton => self.qmp("system_powerdown", None).map(drop),
            ShutdownRequest::CtrlAltDelete => self.qmp_client()?.send_ctrl_alt_delete(),
            ShutdownRequest::ConsoleInput(text) => self.write_console(&text),
            ShutdownRequest::AlreadyRequested => Ok(()),
        };
        match sent {
            Err(e) if !self.has_exited()? => Err(e),
            _ => Ok(()),
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

    /// QEMU's exit status once it has exited (`None` while it runs).
    pub fn exit_status(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .map_err(|e| Error::io("checking on QEMU", e))
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
    pub(crate) fn connect_qmp(&mut self, socket: &Path) -> Result<()> {
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
