//! The loop PID 1 lives in: keep the server running, report readiness, reap, obey signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::backoff::Backoff;
use crate::cmdline::Flags;
use crate::signals::Signals;
use crate::slots::Slots;
use crate::supervisor::{self, ServerSpec};
use crate::{audit, console, readiness, shutdown};

/// Everything the loop needs, decided at boot.
pub struct Settings {
    pub server: ServerSpec,
    pub probe: SocketAddr,
    pub listen: String,
    pub models: String,
    pub flags: Flags,
    pub debug_shell: bool,
    pub data_mount: Option<PathBuf>,
    /// A/B slots: a trial to commit or roll back, updates to install.
    pub slots: Option<Slots>,
}

enum Server {
    Running {
        pid: Pid,
        started: Instant,
        ready: bool,
    },
    Waiting {
        until: Instant,
        last_exit: Option<String>,
    },
}

/// A connect to a port nobody listens on yet fails at once; this bounds how late READY is
/// seen after the server is ready.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);
const IDLE_WAKEUP: Duration = Duration::from_secs(5);
const SHELL_RESPAWN: Duration = Duration::from_secs(1);

pub fn run(mut settings: Settings, mut signals: Signals) -> ! {
    let mut slots = settings.slots.take();
    let mut backoff = Backoff::default();
    let mut server = Server::Waiting {
        until: Instant::now(),
        last_exit: None,
    };
    let mut starts = 0u32;
    let mut kill_pending = settings.flags.kill_server_once;
    let mut shell: Option<Pid> = None;
    let mut shell_due = settings.debug_shell.then(Instant::now);
    loop {
        let now = Instant::now();
        if let Server::Waiting { until, last_exit } = &server {
            if now >= *until {
                server = start_server(&settings, &mut backoff, &mut starts, last_exit.clone());
            }
        }
        if shell_due.is_some_and(|due| now >= due) {
            shell_due = None;
            match supervisor::spawn_debug_shell() {
                Ok(pid) => shell = Some(pid),
                Err(error) => console::error("debug-shell", format!("/bin/sh: {error}")),
            }
        }
        if let Server::Running { pid, ready, .. } = &mut server {
            if !*ready && readiness::is_ready(settings.probe) {
                *ready = true;
                console::line(&format!(
                    "EDGEIMG-READY model={} listen={} ms_since_boot={}",
                    settings.models,
                    settings.listen,
                    readiness::ms_since_boot()
                ));
                console::line(&audit::line(*pid));
                if kill_pending {
                    kill_pending = false;
                    console::line(&format!("EDGEIMG-SELFTEST kill-server pid={pid}"));
                    let _ = kill(*pid, Signal::SIGKILL);
                } else if settings.flags.poweroff_after_ready {
                    power_off("poweroff_after_ready", &settings, shell);
                }
            }
        }
        if let Some(slots) = &mut slots {
            let ready = matches!(server, Server::Running { ready: true, .. });
            if let Some(reason) = slots.poll(ready) {
                end_shell(shell);
                shutdown::restart(reason, settings.data_mount.as_deref());
            }
        }

        let timeout = match &server {
            Server::Running { ready: false, .. } => PROBE_INTERVAL,
            Server::Waiting { until, .. } => until.saturating_duration_since(Instant::now()),
            Server::Running { .. } => IDLE_WAKEUP,
        };
        let timeout = match shell_due {
            Some(due) => timeout.min(due.saturating_duration_since(Instant::now())),
            None => timeout,
        };
        if let Some(reason) = signals.wait(timeout) {
            power_off(reason, &settings, shell);
        }

        while let Some((pid, status)) = reap_one() {
            if let Server::Running {
                pid: server_pid,
                started,
                ready,
            } = &server
            {
                if pid == *server_pid {
                    if let (Some(slots), false) = (&mut slots, *ready) {
                        slots.server_exited(&status);
                    }
                    let ran = started.elapsed();
                    let delay = backoff.after_exit(ran);
                    console::line(&format!(
                        "EDGEIMG-SERVER-EXIT status={status} ran_ms={} restart_in_ms={}",
                        ran.as_millis(),
                        delay.as_millis()
                    ));
                    server = Server::Waiting {
                        until: Instant::now() + delay,
                        last_exit: Some(status),
                    };
                    continue;
                }
            }
            if shell == Some(pid) {
                shell = None;
                shell_due = Some(Instant::now() + SHELL_RESPAWN);
            }
        }
    }
}

/// Ends the debug shell at once (an interactive shell ignores SIGTERM and holds no state),
/// then stops everything else gracefully.
fn power_off(reason: &str, settings: &Settings, shell: Option<Pid>) -> ! {
    end_shell(shell);
    shutdown::power_off(reason, settings.data_mount.as_deref())
}

fn end_shell(shell: Option<Pid>) {
    if let Some(shell) = shell {
        // The shell leads its own session: its process group holds its jobs too.
        let _ = kill(Pid::from_raw(-shell.as_raw()), Signal::SIGKILL);
    }
}

fn start_server(
    settings: &Settings,
    backoff: &mut Backoff,
    starts: &mut u32,
    last_exit: Option<String>,
) -> Server {
    match supervisor::spawn_server(&settings.server) {
        Ok(pid) => {
            if *starts > 0 {
                console::line(&format!(
                    "EDGEIMG-RESTARTED model={} restarts={} last_exit={} ms_since_boot={}",
                    settings.models,
                    starts,
                    last_exit.as_deref().unwrap_or("none"),
                    readiness::ms_since_boot()
                ));
            }
            *starts += 1;
            Server::Running {
                pid,
                started: Instant::now(),
                ready: false,
            }
        }
        Err(error) => {
            let delay = backoff.after_exit(Duration::ZERO);
            console::error(
                "server:start",
                format!(
                    "{}: {error} (retrying in {} ms)",
                    settings.server.path,
                    delay.as_millis()
                ),
            );
            Server::Waiting {
                until: Instant::now() + delay,
                last_exit,
            }
        }
    }
}

/// Reaps one exited child (any child: orphans are re-parented to PID 1).
fn reap_one() -> Option<(Pid, String)> {
    loop {
        return match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => Some((pid, format!("exit:{code}"))),
            Ok(WaitStatus::Signaled(pid, signal, _)) => {
                Some((pid, format!("signal:{}", signal.as_str())))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => None,
            Ok(_) => continue,
        };
    }
}
