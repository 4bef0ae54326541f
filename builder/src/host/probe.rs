//! How each kind of requirement is looked for on this machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use edge_config::Arch;
use edgeimg_qemu::{find_qemu_for, Board as QemuBoard, MachineProfile};

use crate::image::device::folder::{BinaryFolder, BinaryKind};
use crate::image::onnxruntime::onnxruntime_cached;
use crate::writers::tool::locate;

#[derive(Debug, Clone)]
pub enum Probe {
    /// A program on PATH (or in the sbin folders).
    Command(String),
    /// A file (firmware, cross libraries, keyrings) or folder (`/sys/block`).
    File(PathBuf),
    /// A QEMU the harness would use lists this board's machine (PATH's, or the one
    /// `tests/setup.sh` unpacks into the cache: what `edgeimg test` finds).
    QemuMachine(QemuBoard),
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
            Probe::QemuMachine(board) => qemu_machine(&board.profile()),
            Probe::RustTarget { tree, triple } => rust_target(tree, triple),
            Probe::PythonPip => python_pip(),
            Probe::OnnxruntimeWheel { arch, cache_dir } => {
                match onnxruntime_cached(cache_dir, *arch) {
                    Some(path) => Ok(path.display().to_string()),
                    None => python_pip()
                        .map(|pip| {
                            format!("not cached yet; {pip} downloads it from PyPI on first use")
                        })
                        .map_err(|e| format!("not cached, and {e} to download it from PyPI")),
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

/// `python3 -m pip`, what downloads every wheel (edgeimg-pypi): its version, or why it fails.
fn python_pip() -> Result<String, String> {
    run_ok(Command::new("python3").args(["-m", "pip", "--version"]))
        .map(|said| said.trim().to_string())
        .map_err(|e| format!("`python3 -m pip` does not run: {e}"))
}

fn qemu_machine(profile: &MachineProfile) -> Result<String, String> {
    let path = find_qemu_for(profile).map_err(|e| e.to_string())?;
    Ok(format!("{} ({})", path.display(), qemu_version(&path)?))
}

/// Asked once per run and binary: several requirements name machines of the same QEMU.
fn qemu_version(path: &Path) -> Result<String, String> {
    static VERSIONS: Mutex<BTreeMap<PathBuf, Result<String, String>>> = Mutex::new(BTreeMap::new());
    let mut versions = VERSIONS.lock().unwrap_or_else(|e| e.into_inner());
    versions
        .entry(path.to_path_buf())
        .or_insert_with(|| {
            Ok(run_ok(Command::new(path).arg("-version"))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string())
        })
        .clone()
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
    fn the_host_qemu_names_its_machines() {
        // Real QEMU, installed by tests/setup.sh: q35 is what qemu-x86_64 images boot on,
        // raspi4b what Pi 4 cards boot on (QEMU 10, unpacked into the cache).
        for board in [QemuBoard::QemuX86_64, QemuBoard::Raspi4b] {
            let found = qemu_machine(&board.profile()).unwrap();
            assert!(found.contains("QEMU emulator version"), "{found}");
        }
        let mut profile = QemuBoard::QemuX86_64.profile();
        profile.machine = "no-such-machine";
        let err = qemu_machine(&profile).unwrap_err();
        assert!(
            err.contains("machine `no-such-machine`") && err.contains("qemu-system-x86_64"),
            "{err}"
        );
    }
}
