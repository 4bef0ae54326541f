//! What this machine needs for each command, and whether it has it: the programs the writers
//! run, QEMU with the machines the boards boot on, the cross libraries and wheel of the ONNX
//! Runtime engine, and the device binaries (installed, or the Rust toolchain that builds them).
//! One list: `edgeimg doctor` checks all of it, and build, test, run, flash, lock and mirror
//! check their part at their start ([`preflight`]), so a missing tool is named, with what to
//! install, before any work rather than ten minutes in.

mod needs;
mod probe;

pub use needs::{everything, for_build, for_flash, for_mirror, for_run, for_test};

use anyhow::{bail, Result};

/// One thing a command needs from this machine.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// The heading `edgeimg doctor` lists it under.
    pub group: &'static str,
    /// What is needed, e.g. `mke2fs`, `qemu-system-aarch64 -M virt`.
    pub what: String,
    /// What for, e.g. "the ext4 data partition of disk images".
    pub purpose: String,
    pub probe: probe::Probe,
    pub fix: Fix,
    /// Listed by `edgeimg doctor`, but never stops a command.
    pub optional: bool,
}

/// How to get what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Install this Debian package.
    Apt(String),
    /// Do this (not a package: rustup, a newer QEMU, reinstalling edgeimg).
    Do(String),
}

impl std::fmt::Display for Fix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fix::Apt(package) => write!(f, "{}apt-get install {package}", sudo()),
            Fix::Do(what) => f.write_str(what),
        }
    }
}

/// What checking one requirement found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub requirement: Requirement,
    /// `Ok(where or which version)` or `Err(why it is missing)`.
    pub found: Result<String, String>,
}

impl Finding {
    pub fn missing(&self) -> bool {
        self.found.is_err()
    }
}

/// Check every requirement (each at most once: the same `what` listed twice is one check).
pub fn check(requirements: Vec<Requirement>) -> Vec<Finding> {
    let mut seen = std::collections::BTreeSet::new();
    requirements
        .into_iter()
        .filter(|r| seen.insert(r.what.clone()))
        .map(|requirement| Finding {
            found: requirement.probe.run(),
            requirement,
        })
        .collect()
}

/// Fails, naming every missing requirement of `command` and how to get it, before the command
/// does any work. Optional requirements never fail it.
pub fn preflight(command: &str, requirements: Vec<Requirement>) -> Result<()> {
    let missing: Vec<Finding> = check(requirements)
        .into_iter()
        .filter(|f| f.missing() && !f.requirement.optional)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut text = format!("edgeimg {command} cannot start; this machine lacks:");
    for finding in &missing {
        let r = &finding.requirement;
        text.push_str(&format!(
            "\n  {} ({}): {}",
            r.what,
            r.purpose,
            finding
                .found
                .as_ref()
                .err()
                .map(String::as_str)
                .unwrap_or("")
        ));
        text.push_str(&format!("\n      fix: {}", r.fix));
    }
    if let Some(apt) = apt_command(&missing) {
        text.push_str(&format!("\nthe Debian packages at once: {apt}"));
    }
    text.push_str("\n(`edgeimg doctor` checks everything edgeimg uses)");
    bail!(text)
}

/// One `apt-get install` line for every missing requirement a Debian package provides.
pub fn apt_command(findings: &[Finding]) -> Option<String> {
    let mut packages: Vec<&str> = findings
        .iter()
        .filter(|f| f.missing())
        .filter_map(|f| match &f.requirement.fix {
            Fix::Apt(p) => Some(p.as_str()),
            Fix::Do(_) => None,
        })
        .collect();
    packages.sort_unstable();
    packages.dedup();
    (!packages.is_empty()).then(|| {
        format!(
            "{}apt-get install -y --no-install-recommends {}",
            sudo(),
            packages.join(" ")
        )
    })
}

fn sudo() -> &'static str {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        ""
    } else {
        "sudo "
    }
}

#[cfg(test)]
mod tests {
    use super::probe::Probe;
    use super::*;

    fn requirement(what: &str, probe: Probe, fix: Fix, optional: bool) -> Requirement {
        Requirement {
            group: "test",
            what: what.into(),
            purpose: format!("{what} for the test"),
            probe,
            fix,
            optional,
        }
    }

    #[test]
    fn a_missing_tool_stops_the_command_naming_it_and_its_package() {
        let err = preflight(
            "build",
            vec![
                requirement(
                    "sh",
                    Probe::Command("sh".into()),
                    Fix::Apt("dash".into()),
                    false,
                ),
                requirement(
                    "no-such-tool-xyz",
                    Probe::Command("no-such-tool-xyz".into()),
                    Fix::Apt("xyz-utils".into()),
                    false,
                ),
                requirement(
                    "/no/such/firmware.fd",
                    Probe::File("/no/such/firmware.fd".into()),
                    Fix::Apt("ovmf".into()),
                    true,
                ),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("edgeimg build cannot start"), "{err}");
        assert!(
            err.contains("no-such-tool-xyz (no-such-tool-xyz for the test)")
                && err.contains("apt-get install xyz-utils"),
            "{err}"
        );
        assert!(!err.contains("dash") && !err.contains("ovmf"), "{err}");
        assert!(err.contains("--no-install-recommends xyz-utils"), "{err}");
    }

    #[test]
    fn nothing_missing_passes_and_duplicates_are_checked_once() {
        let sh = || {
            requirement(
                "sh",
                Probe::Command("sh".into()),
                Fix::Apt("dash".into()),
                false,
            )
        };
        assert!(preflight("run", vec![sh(), sh()]).is_ok());
        assert_eq!(check(vec![sh(), sh()]).len(), 1);
    }
}
