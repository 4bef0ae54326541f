//! Choosing KVM or TCG. `/dev/kvm` can exist, let firmware run, and still hang a Linux guest
//! (nested virtualization on some cloud VMs: the guest prints nothing, spinning in the host
//! kernel). So KVM is used only after the guest's own kernel has booted under it to a known
//! point (`probe.rs`); the verdict is remembered per host, QEMU binary and kernel ([`VerdictStore`]),
//! so the probe's cost is paid once.

mod probe;
mod verdicts;

use std::fmt;
use std::path::Path;

use crate::board::{Arch, MachineProfile};
use crate::error::{Error, Result};

pub use probe::PROBE_DEADLINE;
pub use verdicts::VerdictStore;

/// Environment variable that forces the accelerator (`tcg` or `kvm`).
pub const ACCEL_ENV: &str = "EDGEIMG_ACCEL";

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

impl fmt::Display for AccelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.accel, self.reason)
    }
}

/// Pick the accelerator for a guest on `profile` that boots `kernel` (`None` for a firmware
/// boot): `EDGEIMG_ACCEL` if set; TCG for a foreign architecture or a machine KVM cannot run;
/// else KVM only if that kernel booted under KVM on this host (probed once, then remembered).
/// Every choice is logged at `info` with its reason, so a fallback is never silent.
pub fn choose(profile: &MachineProfile, qemu: &Path, kernel: Option<&Path>) -> Result<AccelChoice> {
    let forced = parse_override(std::env::var(ACCEL_ENV).ok().as_deref())?;
    let choice = decide(
        profile,
        qemu,
        kernel,
        forced,
        &VerdictStore::default_location(),
    );
    tracing::info!("QEMU accelerator for {}: {choice}", profile.board);
    Ok(choice)
}

/// [`choose`] with the override and the verdict store given, for callers that manage both.
pub fn decide(
    profile: &MachineProfile,
    qemu: &Path,
    kernel: Option<&Path>,
    forced: Option<Accel>,
    store: &VerdictStore,
) -> AccelChoice {
    if let Some(forced) = forced {
        return AccelChoice {
            accel: forced,
            reason: format!("{ACCEL_ENV}={forced}"),
        };
    }
    let arch = profile.arch();
    if Arch::host() != Some(arch) {
        return tcg(format!("{arch} guest on a {} host", std::env::consts::ARCH));
    }
    if !profile.kvm_capable {
        return tcg(format!(
            "QEMU's {} machine has no KVM support",
            profile.machine
        ));
    }
    if let Err(why) = probe::kvm_device() {
        return tcg(format!("KVM unusable ({why}); using TCG"));
    }
    let verdict = match kernel {
        Some(kernel) => store.verdict_for_kernel(profile, qemu, kernel),
        None => match store.verdict_for_host(profile, qemu) {
            Some(verdict) => verdict,
            None => {
                return tcg(
                    "a firmware boot gives no kernel to probe KVM with, and no earlier probe \
                     on this host and QEMU says KVM runs Linux; using TCG"
                        .into(),
                )
            }
        },
    };
    if verdict.kvm_runs_linux {
        AccelChoice {
            accel: Accel::Kvm,
            reason: verdict.reason,
        }
    } else {
        tcg(format!("KVM unusable ({}); using TCG", verdict.reason))
    }
}

fn tcg(reason: String) -> AccelChoice {
    AccelChoice {
        accel: Accel::Tcg,
        reason,
    }
}

/// The value of `EDGEIMG_ACCEL`: unset or empty chooses automatically.
pub fn parse_override(value: Option<&str>) -> Result<Option<Accel>> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "tcg" => Ok(Some(Accel::Tcg)),
            "kvm" => Ok(Some(Accel::Kvm)),
            _ => Err(Error::BadAccelOverride(v.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Board;

    #[test]
    fn the_override_accepts_either_accelerator_in_any_case() {
        assert_eq!(parse_override(None).unwrap(), None);
        assert_eq!(parse_override(Some("")).unwrap(), None);
        assert_eq!(parse_override(Some("TCG")).unwrap(), Some(Accel::Tcg));
        assert_eq!(parse_override(Some("kvm")).unwrap(), Some(Accel::Kvm));
        let err = parse_override(Some("hvf")).unwrap_err().to_string();
        assert!(err.contains("hvf") && err.contains("tcg"), "{err}");
    }

    #[test]
    fn a_forced_accelerator_skips_the_probe_and_says_why() {
        let store = VerdictStore::at(tempfile::tempdir().unwrap().path());
        for forced in [Accel::Kvm, Accel::Tcg] {
            let choice = decide(
                &Board::QemuX86_64.profile(),
                Path::new("/nonexistent/qemu"),
                Some(Path::new("/nonexistent/kernel")),
                Some(forced),
                &store,
            );
            assert_eq!(choice.accel, forced);
            assert_eq!(choice.reason, format!("EDGEIMG_ACCEL={forced}"));
        }
    }

    #[test]
    fn a_machine_without_kvm_support_gets_tcg() {
        let store = VerdictStore::at(tempfile::tempdir().unwrap().path());
        let choice = decide(
            &Board::Raspi3b.profile(),
            Path::new("/nonexistent/qemu"),
            None,
            None,
            &store,
        );
        assert_eq!(choice.accel, Accel::Tcg);
    }
}
