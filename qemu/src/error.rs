//! Every way a boot can fail, each carrying what the user needs to fix it
//! (for guest-side failures: the tail of the console log).

use std::path::PathBuf;
use std::time::Duration;

/// How many console lines an error carries.
pub const ERROR_TAIL_LINES: usize = 40;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "`{binary}` was not found on PATH; install QEMU with \
         `apt-get install -y --no-install-recommends qemu-system-x86 qemu-system-arm`"
    )]
    QemuNotFound { binary: String },

    #[error(
        "no QEMU here has machine `{machine}` (tried {tried}); install a QEMU that lists it in \
         `-M help` (raspi4b: QEMU 9.0 or later; `edgeimg doctor` says how; in the source tree \
         tests/setup.sh unpacks Debian bookworm-backports' QEMU 10 into the edgeimg cache, \
         qemu/bin/)"
    )]
    MachineMissing { machine: String, tried: String },

    #[error("invalid boot spec: {0}")]
    BadSpec(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("QEMU exited before the guest was ready ({status}){}{}", stderr_section(.stderr), tail_section(.console_tail))]
    QemuExited {
        status: String,
        stderr: String,
        console_tail: String,
    },

    #[error("the guest reported an error: {line}{}", tail_section(.console_tail))]
    GuestError { line: String, console_tail: String },

    #[error("the guest kernel panicked: {line}{}", tail_section(.console_tail))]
    KernelPanic { line: String, console_tail: String },

    #[error("the guest printed a malformed readiness line ({reason}): {line}")]
    BadReadyLine { line: String, reason: String },

    #[error(
        "no EDGEIMG-READY line on the console within {timeout:?} \
         (console log: {log}){}", tail_section(.console_tail)
    )]
    ReadyTimeout {
        timeout: Duration,
        log: PathBuf,
        console_tail: String,
    },

    #[error("no console line containing {needle:?} within {timeout:?}{}", tail_section(.console_tail))]
    ConsoleTimeout {
        needle: String,
        timeout: Duration,
        console_tail: String,
    },

    #[error(
        "the guest did not power off within {timeout:?}; QEMU was killed{}",
        tail_section(.console_tail)
    )]
    ShutdownTimeout {
        timeout: Duration,
        console_tail: String,
    },

    #[error("QMP: {0}")]
    Qmp(String),

    #[error("invalid EDGEIMG_ACCEL={0:?}: use `tcg` or `kvm` (or unset it to probe KVM)")]
    BadAccelOverride(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

fn tail_section(tail: &str) -> String {
    if tail.is_empty() {
        "\n(the console printed nothing)".to_string()
    } else {
        format!("\n--- last console lines ---\n{tail}\n--- end of console ---")
    }
}

fn stderr_section(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("\nQEMU said: {}", stderr.trim())
    }
}
