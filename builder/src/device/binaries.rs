//! Our own static binaries for the device (`edge-init`, `edge-runtime`), built from this
//! workspace for the image's arch with the `device` profile. Cargo makes a rebuild a no-op
//! when nothing changed, so every `edgeimg build` simply asks for them.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::recipe::Arch;

/// Binaries to use instead of building: a folder holding `<musl-target>/edge-init` and
/// `<musl-target>/edge-runtime` (for machines without the source tree's toolchain).
pub const PREBUILT_ENV: &str = "EDGEIMG_DEVICE_BINARIES";

#[derive(Debug, Clone)]
pub struct DeviceBinaries {
    pub init: PathBuf,
    pub runtime: PathBuf,
}

pub fn device_binaries(arch: Arch) -> Result<DeviceBinaries> {
    let triple = arch.musl_target();
    if let Some(dir) = std::env::var_os(PREBUILT_ENV) {
        let dir = PathBuf::from(dir).join(triple);
        return existing(&dir, PREBUILT_ENV);
    }
    let workspace = workspace_root();
    if !workspace.join("runtime/init/Cargo.toml").is_file() {
        bail!(
            "cannot build the device binaries: the edgeimg source tree is not at {}; set {PREBUILT_ENV} to a folder with {triple}/edge-init and {triple}/edge-runtime",
            workspace.display()
        );
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&workspace)
        .args(["build", "--profile", "device", "--target", triple])
        .args(["-p", "edge-init", "-p", "edge-runtime"])
        // The image's date is not the binaries' business, and the `cc` crate reruns build
        // scripts when it changes: a reproducible build must not recompile everything.
        .env_remove("SOURCE_DATE_EPOCH");
    if !std::io::stderr().is_terminal() {
        cmd.arg("--quiet");
    }
    let status = cmd.status().context(
        "cannot run cargo to build edge-init and edge-runtime; is Rust installed (tests/setup.sh)?",
    )?;
    if !status.success() {
        bail!("building edge-init/edge-runtime for {triple} failed (see cargo's output above); `rustup target add {triple}` if the target is missing");
    }
    existing(&target_dir(&workspace).join(triple).join("device"), "cargo")
}

fn existing(dir: &Path, source: &str) -> Result<DeviceBinaries> {
    let bins = DeviceBinaries {
        init: dir.join("edge-init"),
        runtime: dir.join("edge-runtime"),
    };
    for b in [&bins.init, &bins.runtime] {
        if !b.is_file() {
            bail!("{} is missing (from {source})", b.display());
        }
    }
    Ok(bins)
}

/// The workspace this edgeimg was built from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("builder/ lives in the workspace")
        .to_path_buf()
}

pub fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace.join(p)
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
}
