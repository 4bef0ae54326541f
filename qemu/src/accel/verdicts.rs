//! Remembered probe verdicts: one small file per (host, QEMU binary, machine, kernel) under the
//! edgeimg cache, so a host where KVM hangs Linux pays the probe's deadline once, not per boot.
//! A verdict is kept only when the probe was decisive (the kernel finished, or printed nothing).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::probe::{boot_kernel_under_kvm, ProbeOutcome, PROBE_DEADLINE};
use crate::board::MachineProfile;

/// Whether KVM runs a Linux guest here, and the sentence that says how we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub kvm_runs_linux: bool,
    pub reason: String,
}

/// Where verdicts are remembered (`None`: for this process only).
#[derive(Debug, Clone)]
pub struct VerdictStore {
    dir: Option<PathBuf>,
}

/// Verdicts already reached in this process, by store and file name.
static MEMO: Mutex<Option<HashMap<String, Verdict>>> = Mutex::new(None);

impl VerdictStore {
    /// `$EDGEIMG_CACHE/accel`, else `$XDG_CACHE_HOME/edgeimg/accel`, else `~/.cache/edgeimg/accel`.
    pub fn default_location() -> VerdictStore {
        VerdictStore {
            dir: edge_config::cache_dir().map(|root| root.join("accel")),
        }
    }

    pub fn at(dir: &Path) -> VerdictStore {
        VerdictStore {
            dir: Some(dir.to_path_buf()),
        }
    }

    /// The verdict for `kernel` on this host: remembered, or probed now and remembered.
    pub fn verdict_for_kernel(
        &self,
        profile: &MachineProfile,
        qemu: &Path,
        kernel: &Path,
    ) -> Verdict {
        let host = host_key(profile, qemu);
        let name = match file_sha256(kernel) {
            Ok(kernel_key) => format!("{}-{}.json", &host[..16], &kernel_key[..16]),
            Err(e) => {
                return Verdict {
                    kvm_runs_linux: false,
                    reason: format!(
                        "cannot read the kernel {} to probe KVM: {e}",
                        kernel.display()
                    ),
                }
            }
        };
        if let Some(known) = self.remembered(&name) {
            return known;
        }
        let (verdict, decisive) = match boot_kernel_under_kvm(profile, qemu, kernel, PROBE_DEADLINE) {
            ProbeOutcome::Reached(took) => (
                Verdict {
                    kvm_runs_linux: true,
                    reason: format!(
                        "this kernel booted under KVM in {:.1}s when probed on this host and QEMU",
                        took.as_secs_f64()
                    ),
                },
                true,
            ),
            ProbeOutcome::Silent => (
                Verdict {
                    kvm_runs_linux: false,
                    reason: format!(
                        "this kernel printed nothing in {}s under KVM on this host and QEMU: KVM hangs Linux guests here",
                        PROBE_DEADLINE.as_secs()
                    ),
                },
                true,
            ),
            ProbeOutcome::QemuFailed(why) => (
                Verdict {
                    kvm_runs_linux: false,
                    reason: why,
                },
                true,
            ),
            ProbeOutcome::Inconclusive(why) => (
                Verdict {
                    kvm_runs_linux: false,
                    reason: format!("the KVM probe was inconclusive: {why}"),
                },
                false,
            ),
        };
        self.remember(&name, &verdict, decisive);
        verdict
    }

    /// The newest decisive verdict for any kernel on this host and QEMU (for firmware boots,
    /// which have no kernel of their own to probe with).
    pub fn verdict_for_host(&self, profile: &MachineProfile, qemu: &Path) -> Option<Verdict> {
        let prefix = host_key(profile, qemu)[..16].to_string();
        let dir = self.dir.as_ref()?;
        let newest = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()?;
        let verdict = read_verdict(&newest.1)?;
        Some(Verdict {
            reason: format!("an earlier probe with another kernel: {}", verdict.reason),
            ..verdict
        })
    }

    fn memo_key(&self, name: &str) -> String {
        match &self.dir {
            Some(dir) => dir.join(name).to_string_lossy().into_owned(),
            None => name.to_string(),
        }
    }

    fn remembered(&self, name: &str) -> Option<Verdict> {
        let key = self.memo_key(name);
        if let Some(v) = MEMO.lock().unwrap().as_ref().and_then(|m| m.get(&key)) {
            return Some(v.clone());
        }
        let v = read_verdict(&self.dir.as_ref()?.join(name))?;
        Some(Verdict {
            reason: format!("remembered: {}", v.reason),
            ..v
        })
    }

    fn remember(&self, name: &str, verdict: &Verdict, decisive: bool) {
        MEMO.lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(self.memo_key(name), verdict.clone());
        let Some(dir) = self.dir.as_ref().filter(|_| decisive) else {
            return;
        };
        let json = serde_json::json!({
            "kvm_runs_linux": verdict.kvm_runs_linux,
            "reason": verdict.reason,
        });
        // Best effort: a verdict that cannot be stored is probed again next time.
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        let stored = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, json.to_string()))
            .and_then(|()| std::fs::rename(&tmp, dir.join(name)));
        if let Err(e) = stored {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!("cannot remember the KVM verdict in {}: {e}", dir.display());
        }
    }
}

fn read_verdict(path: &Path) -> Option<Verdict> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(Verdict {
        kvm_runs_linux: json.get("kvm_runs_linux")?.as_bool()?,
        reason: json.get("reason")?.as_str()?.to_string(),
    })
}

/// What the verdict depends on besides the kernel: the host kernel and machine, the QEMU binary
/// (path, size and mtime change with its version) and the QEMU machine.
fn host_key(profile: &MachineProfile, qemu: &Path) -> String {
    let mut h = Sha256::new();
    h.update(b"edgeimg-kvm-verdict-v1\0");
    // SAFETY: uname fills the zeroed struct it is given.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } == 0 {
        for field in [
            &uts.sysname[..],
            &uts.release[..],
            &uts.version[..],
            &uts.machine[..],
        ] {
            let bytes: Vec<u8> = field
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            h.update(&bytes);
            h.update(b"\0");
        }
    }
    for id in ["/etc/machine-id", "/proc/sys/kernel/hostname"] {
        h.update(std::fs::read(id).unwrap_or_default());
        h.update(b"\0");
    }
    let qemu = std::fs::canonicalize(qemu).unwrap_or_else(|_| qemu.to_path_buf());
    h.update(qemu.as_os_str().as_encoded_bytes());
    if let Ok(meta) = std::fs::metadata(&qemu) {
        use std::os::unix::fs::MetadataExt;
        h.update(meta.size().to_le_bytes());
        h.update(meta.mtime().to_le_bytes());
    }
    h.update(profile.machine.as_bytes());
    hex(&h.finalize())
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(hex(&h.finalize())),
            n => h.update(&buf[..n]),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
