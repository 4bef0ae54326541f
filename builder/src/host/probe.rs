//! How each kind of requirement is looked for on this machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use edge_config::Arch;

use crate::image::device::folder::{BinaryFolder, BinaryKind};
use crate::image::onnxruntime::onnxruntime_cached;
use crate::writers::tool::locate;

#[derive(Debug, Clone)]
pub enum Probe {
    /// A program on PATH (or in the sbin folders).
    Command(String),
    /// A file (firmware, cross libraries, keyrings) or folder (`/sys/block`).
    File(PathBuf),
    /// `qemu-system-<arch> -machine help` lists this machine.
    QemuMachine { arch: Arch, machine: String },
    /// The standard library of a Rust target in the toolchain the source tree pins.
    RustTarget { tree: PathBuf, triple: String },
    /// `python3 -m pip` runs (the mirror downloads wheels with it).
    PythonPip,
    /// The onnxruntime wheel's library for an arch: in the cache, or pip to download it.
    OnnxruntimeWheel { arch: Arch, cache_dir: PathBuf },
    /// Device binaries in an installed (or named) folder, hashes checked.
    DeviceFolder {
        folder: BinaryFolder,
        arch: Arch,
        kinds: Vec<BinaryKind>,
    },
    /// Cannot be had as things stand; says why.
    Never(String),
}

impl Probe {
    /// `Ok(where it is, or its version)`, `Err(why it counts as missing)`.
    pub fn run(&self) -> Result<String, String> {
        match self {
            Probe::Command(name) => locate(name)
                .map(|p| p.display().to_string())
                .ok_or_else(|| format!("`{name}` is not on PATH")),
            Probe::File(path) => match path.exists() {
                true => Ok(path.display().to_string()),
                false => Err(format!("{} does not exist", path.display())),
            },
            Probe::QemuMachine { arch, machine } => qemu_machine(*arch, machine),
            Probe::RustTarget { tree, triple } => rust_target(tree, triple),
            Probe::PythonPip => run_ok(Command::new("python3").args(["-m", "pip", "--version"]))
                .map(|said| said.trim().to_string())
                .map_err(|e| format!("`python3 -m pip` does not run: {e}")),
            Probe::OnnxruntimeWheel { arch, cache_dir } => {
                match onnxruntime_cached(cache_dir, *arch) {
                    Some(path) => Ok(path.display().to_string()),
                    None => locate("pip")
                        .map(|pip| {
                            format!(
                                "not cached yet; {} downloads it from PyPI on first use",
                                pip.display()
                            )
                        })
                        .ok_or_else(|| {
                            "neither cached nor `pip` on PATH to download it from PyPI".into()
                        }),
                }
            }
            Probe::DeviceFolder {
                folder,
                arch,
                kinds,
            } => {
                let mut files = Vec::new();
                for kind in kinds {
                    folder.file(*arch, *kind).map_err(|e| format!("{e:#}"))?;
                    files.push(kind.relative_path(*arch));
                }
                let checked = match folder.index {
                    Some(_) => "sha256 as listed",
                    None => "no index to check them against",
                };
                Ok(format!("{} ({checked})", files.join(", ")))
            }
            Probe::Never(why) => Err(why.clone()),
        }
    }
}

/// Stdout of a command that must succeed.
fn run_ok(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What one QEMU binary says about itself: its version line and its machine names.
#[derive(Debug, Clone)]
struct QemuFacts {
    path: PathBuf,
    version: String,
    machines: Vec<String>,
}

fn qemu_machine(arch: Arch, machine: &str) -> Result<String, String> {
    let facts = qemu_facts(arch)?;
    if facts.machines.iter().any(|m| m == machine) {
        Ok(format!("{} ({})", facts.path.display(), facts.version))
    } else {
        Err(format!(
            "{} ({}) has no machine `{machine}` (it has: {})",
            facts.path.display(),
            facts.version,
            facts.machines.join(" ")
        ))
    }
}

/// Asked once per run and binary: several requirements name machines of the same QEMU.
fn qemu_facts(arch: Arch) -> Result<QemuFacts, String> {
    static FACTS: Mutex<BTreeMap<Arch, Result<QemuFacts, String>>> = Mutex::new(BTreeMap::new());
    let mut facts = FACTS.lock().unwrap_or_else(|e| e.into_inner());
    facts
        .entry(arch)
        .or_insert_with(|| {
            let binary = arch.qemu_binary();
            let path = locate(binary).ok_or_else(|| format!("`{binary}` is not on PATH"))?;
            let version = run_ok(Command::new(&path).arg("-version"))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            let help = run_ok(Command::new(&path).args(["-machine", "help"]))?;
            Ok(QemuFacts {
                path,
                version,
                machines: machine_names(&help),
            })
        })
        .clone()
}

/// The machine names in `-machine help`: the first word of each line after the heading.
fn machine_names(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Supported machines"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The target's standard library in the sysroot of the toolchain `tree` pins
/// (rust-toolchain.toml applies to rustc run there).
fn rust_target(tree: &Path, triple: &str) -> Result<String, String> {
    let sysroot = run_ok(
        Command::new("rustc")
            .args(["--print", "sysroot"])
            // Asking must not install: rustup would fetch a missing pinned toolchain.
            .env("RUSTUP_AUTO_INSTALL", "0")
            .current_dir(tree),
    )
    .map_err(|e| format!("`rustc --print sysroot` failed: {e}"))?;
    let lib = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(triple)
        .join("lib");
    if lib.is_dir() {
        Ok(lib.display().to_string())
    } else {
        Err(format!(
            "the toolchain at {} has no {triple}",
            sysroot.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_are_the_first_word_after_the_heading() {
        let help = "Supported machines are:\nmicrovm              microvm (i386)\npc                   Standard PC (alias of pc-i440fx-7.2)\nq35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\nnone                 empty machine\n";
        assert_eq!(machine_names(help), ["microvm", "pc", "q35", "none"]);
    }

    #[test]
    fn the_host_qemu_names_its_machines() {
        // Real QEMU, installed by tests/setup.sh: q35 is what qemu-x86_64 images boot on.
        let found = qemu_machine(Arch::X86_64, "q35").unwrap();
        assert!(found.contains("QEMU emulator version"), "{found}");
        let err = qemu_machine(Arch::X86_64, "no-such-machine").unwrap_err();
        assert!(
            err.contains("no machine `no-such-machine`") && err.contains("q35"),
            "{err}"
        );
    }
}
