//! The KVM probe: boot the guest's own kernel under KVM with no initramfs and no root, and
//! wait for it to panic for want of a root file system. Getting there means every initcall ran
//! under KVM, so a Linux guest does; firmware alone proves nothing (SeaBIOS finishes under a
//! KVM that then hangs every kernel).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::board::MachineProfile;

/// How long the probe kernel gets. Under a working KVM it panics within a second or two; under
/// TCG the same kernel needs about as long, so this leaves room for a loaded host.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(12);

/// What the kernel prints once it has given up on finding a root: the end of its own boot.
const MARKER: &[u8] = b"Kernel panic";

/// What one probe boot showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The kernel reached its root-mount panic under KVM.
    Reached(Duration),
    /// Not one byte on the console before the deadline: the hang KVM gives broken hosts.
    Silent,
    /// QEMU itself gave up under KVM before the kernel finished (e.g. the host refused a CPU
    /// register QEMU needs): as final as a hang.
    QemuFailed(String),
    /// Anything else (QEMU refused, the kernel stopped early, a slow host): no verdict to keep.
    Inconclusive(String),
}

/// `/dev/kvm` opens and speaks the stable KVM API (version 12).
pub fn kvm_device() -> Result<(), String> {
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: KVM_GET_API_VERSION takes no argument and only returns an int.
    let version = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION as _, 0) };
    match version {
        12 => Ok(()),
        -1 => Err(format!(
            "KVM_GET_API_VERSION failed: {}",
            std::io::Error::last_os_error()
        )),
        v => Err(format!("unexpected KVM API version {v}")),
    }
}

/// Boot `kernel` on `profile`'s machine under KVM, with the harness's own CPU and machine
/// options, and report how far it got within `deadline`.
pub fn boot_kernel_under_kvm(
    profile: &MachineProfile,
    qemu: &Path,
    kernel: &Path,
    deadline: Duration,
) -> ProbeOutcome {
    let mut cmd = Command::new(qemu);
    cmd.args(["-accel", "kvm", "-M", profile.machine, "-cpu", "host"])
        .args([
            "-m",
            "128",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ])
        .arg("-no-reboot");
    for _ in 0..profile.console_serial_index {
        cmd.args(["-serial", "null"]);
    }
    cmd.args(["-serial", "stdio", "-kernel"])
        .arg(kernel)
        .args([
            "-append",
            &format!("console={} panic=-1", profile.kernel_console),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return ProbeOutcome::Inconclusive(format!("cannot start {}: {e}", qemu.display()))
        }
    };
    let started = Instant::now();
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let printed = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let counter = Arc::clone(&printed);
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            counter.fetch_add(n, Ordering::Relaxed);
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(MARKER.len()).any(|w| w == MARKER) {
                let _ = tx.send(true);
                return;
            }
            // Only the tail can still hold the start of a marker.
            if seen.len() > 64 * 1024 {
                seen.drain(..seen.len() - MARKER.len());
            }
        }
        let _ = tx.send(false);
    });
    let result = rx.recv_timeout(deadline);
    let _ = child.kill();
    let _ = child.wait();
    let printed = printed.load(Ordering::Relaxed);
    match result {
        Ok(true) => ProbeOutcome::Reached(started.elapsed()),
        Ok(false) => {
            let mut why = String::new();
            let _ = stderr.read_to_string(&mut why);
            let why = why.lines().last().unwrap_or("no message").trim().to_string();
            ProbeOutcome::QemuFailed(format!(
                "QEMU under KVM ended after {printed} console bytes, before this kernel booted: {why}"
            ))
        }
        Err(_) if printed == 0 => ProbeOutcome::Silent,
        Err(_) => ProbeOutcome::Inconclusive(format!(
            "the kernel printed {printed} bytes under KVM but did not finish booting within {deadline:?}"
        )),
    }
}
