//! Signals as events: PID 1 blocks the ones it acts on and reads them from a signalfd, so
//! nothing runs in signal-handler context. Power-button presses arrive beside them.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::power_button::PowerButton;

/// The power-off reason a power-button press gives.
pub const POWER_BUTTON: &str = "power-button";

/// Signals that ask init to power the machine off. SIGINT is ctrl-alt-del once CAD is
/// disabled; SIGUSR1/SIGUSR2 are what busybox `halt`/`poweroff` send to PID 1.
pub const POWER_OFF: [Signal; 5] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGPWR,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

pub struct Signals {
    fd: SignalFd,
    power_button: Option<PowerButton>,
}

extern "C" fn ignore(_: libc::c_int) {}

impl Signals {
    /// Blocks SIGCHLD and the power-off signals and opens a signalfd for them.
    pub fn install() -> nix::Result<Self> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        for signal in POWER_OFF {
            set.add(signal);
        }
        // A handler as well as the block: the kernel drops signals to PID 1 that have the
        // default disposition, and a handler keeps them queued whatever the mask is.
        let action = SigAction::new(
            SigHandler::Handler(ignore),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in set.iter() {
            // SAFETY: the handler does nothing, so it is trivially async-signal-safe.
            unsafe { sigaction(signal, &action)? };
        }
        set.thread_block()?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals {
            fd,
            power_button: None,
        })
    }

    /// Also waits for presses of this power button from now on.
    pub fn watch_power_button(&mut self, button: PowerButton) {
        self.power_button = Some(button);
    }

    /// Waits up to `timeout` for signals and power-button presses; returns the reason to power
    /// off when one of them asks for it (other signals, like SIGCHLD, only wake the caller).
    pub fn wait(&mut self, timeout: Duration) -> Option<&'static str> {
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = vec![PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        if let Some(button) = &self.power_button {
            fds.push(PollFd::new(button.fd(), PollFlags::POLLIN));
        }
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX),
        );
        let mut reason = None;
        while let Ok(Some(info)) = self.fd.read_signal() {
            if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                if POWER_OFF.contains(&signal) {
                    reason = reason.or(Some(signal.as_str()));
                }
            }
        }
        if self.power_button.as_ref().is_some_and(|b| b.pressed()) {
            reason = reason.or(Some(POWER_BUTTON));
        }
        reason
    }
}
