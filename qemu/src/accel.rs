//! Choosing KVM or TCG. `/dev/kvm` can exist and still hang a guest, so KVM is only used after
//! a tiny guest has run to a known point under it; the probe runs once per process.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::board::Arch;
use crate::error::{Error, Result};

/// Environment variable that forces the accelerator (`tcg` or `kvm`).
pub const ACCEL_ENV: &str = "EDGEIMG_ACCEL";

/// How long the tiny KVM guest gets to reach its known point (TCG needs ~0.5 s for it).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_qemu(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_qemu())
    }
}

/// The accelerator picked for a guest, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelChoice {
    pub accel: Accel,
    pub reason: String,
}

/// Pick the accelerator for a guest of `arch`: `EDGEIMG_ACCEL` if set, TCG for a foreign
/// architecture, else KVM if the (cached) probe passes, else TCG.
pub fn choose(arch: Arch, qemu: &Path) -> Result<AccelChoice> {
    if let Some(forced) = override_from_env()? {
        return Ok(AccelChoice {
            accel: forced,
            reason: format!("{ACCEL_ENV}={forced}"),
        });
    }
    if Arch::host() != Some(arch) {
        return Ok(AccelChoice {
            accel: Accel::Tcg,
            reason: format!("{arch} guest on a {} host", std::env::consts::ARCH),
        });
    }
    Ok(match kvm_probe(qemu) {
        Ok(()) => AccelChoice {
            accel: Accel::Kvm,
            reason: "KVM probe passed".into(),
        },
        Err(why) => AccelChoice {
            accel: Accel::Tcg,
            reason: format!("KVM unusable ({why}); using TCG"),
        },
    })
}

fn override_from_env() -> Result<Option<Accel>> {
    match std::env::var(ACCEL_ENV) {
        Err(_) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => match v.to_ascii_lowercase().as_str() {
            "tcg" => Ok(Some(Accel::Tcg)),
            "kvm" => Ok(Some(Accel::Kvm)),
            _ => Err(Error::BadAccelOverride(v)),
        },
    }
}

/// The cached result of probing KVM for the host architecture; logs a fallback once.
pub fn kvm_probe(qemu: &Path) -> std::result::Result<(), String> {
    static PROBE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let result = kvm_api_version().and_then(|()| run_tiny_guest(qemu));
            if let Err(why) = &result {
                tracing::warn!("KVM is not usable ({why}); falling back to TCG (slower)");
            }
            result
        })
        .clone()
}

/// `/dev/kvm` opens and speaks the stable KVM API (version 12).
fn kvm_api_version() -> std::result::Result<(), String> {
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

/// Run the firmware alone under KVM and wait for it to print a message it prints only after
/// running for a while: a KVM that hangs guests never gets there.
fn run_tiny_guest(qemu: &Path) -> std::result::Result<(), String> {
    let (args, marker): (&[&str], &str) = match Arch::host() {
        // SeaBIOS logs to the debug console and ends with this when there is nothing to boot.
        Some(Arch::X86_64) => (
            &[
                "-M",
                "q35",
                "-m",
                "64",
                "-cpu",
                "host",
                "-chardev",
                "stdio,id=dbg",
                "-device",
                "isa-debugcon,iobase=0x402,chardev=dbg",
            ],
            "No bootable device",
        ),
        // AAVMF prints its banner on the PL011 once it is running.
        Some(Arch::Aarch64) => (
            &[
                "-M",
                "virt",
                "-m",
                "128",
                "-cpu",
                "host",
                "-bios",
                "/usr/share/AAVMF/AAVMF_CODE.fd",
                "-serial",
                "stdio",
            ],
            "UEFI",
        ),
        None => return Err("no KVM probe for this host architecture".into()),
    };
    let mut child = Command::new(qemu)
        .args([
            "-accel",
            "kvm",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.as_bytes().to_vec();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(marker.len()).any(|w| w == marker) {
                let _ = tx.send(());
                return;
            }
        }
    });
    let started = Instant::now();
    let reached = rx.recv_timeout(PROBE_TIMEOUT).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    if reached {
        tracing::debug!("KVM probe guest ran in {:?}", started.elapsed());
        Ok(())
    } else {
        Err(format!(
            "a tiny KVM guest did not reach its firmware's end within {PROBE_TIMEOUT:?}"
        ))
    }
}
