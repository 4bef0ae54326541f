//! Stopping everything and powering off.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use crate::console;

/// How long processes get between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// SIGTERM to every process, a grace period, SIGKILL to the rest, sync, unmount the data
/// partition, print `EDGEIMG-POWEROFF` and power off. Never returns.
pub fn power_off(reason: &str, data_mount: Option<&std::path::Path>) -> ! {
    stop_everything(reason, data_mount);
    console::line(&format!(
        "EDGEIMG-POWEROFF reason={reason} ms_since_boot={}",
        crate::readiness::ms_since_boot()
    ));
    let error = reboot(RebootMode::RB_POWER_OFF).err();
    console::error("shutdown:reboot", format!("power off failed: {error:?}"));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// As [`power_off`], but the machine restarts (into the slot `config.txt` now names), after
/// `EDGEIMG-REBOOT reason=...`.
pub fn restart(reason: &str, data_mount: Option<&std::path::Path>) -> ! {
    stop_everything(reason, data_mount);
    console::line(&format!(
        "EDGEIMG-REBOOT reason={reason} ms_since_boot={}",
        crate::readiness::ms_since_boot()
    ));
    let error = reboot(RebootMode::RB_AUTOBOOT).err();
    console::error("shutdown:reboot", format!("restart failed: {error:?}"));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn stop_everything(reason: &str, data_mount: Option<&std::path::Path>) {
    console::info(format!("stopping all processes ({reason})"));
    // pid -1: every process but PID 1 itself.
    let started = Instant::now();
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    let graceful = reap_until_none_left(GRACE);
    if !graceful {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        reap_until_none_left(Duration::from_secs(2));
    }
    console::info(format!(
        "processes stopped in {} ms{}",
        started.elapsed().as_millis(),
        if graceful { "" } else { " (SIGKILL needed)" }
    ));
    nix::unistd::sync();
    if let Some(mountpoint) = data_mount {
        if let Err(errno) = nix::mount::umount(mountpoint) {
            console::error(
                "shutdown:umount",
                format!("{}: {errno}", mountpoint.display()),
            );
        }
    }
    nix::unistd::sync();
}

/// Reaps children until none is left (true) or `patience` runs out (false).
fn reap_until_none_left(patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return true,
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(_) => return true,
        }
    }
}
