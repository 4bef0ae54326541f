//! Our own binaries for the device (`edge-init`, `edge-runtime`), built from this workspace for
//! the image's arch with the `device` profile, and, for `engine = "onnxruntime"`, the shared
//! libraries that runtime loads. Cargo makes a rebuild a no-op when nothing changed, so every
//! `edgeimg build` simply asks for them.
//!
//! edge-init is always the static musl build. edge-runtime is the static musl build with tract,
//! or, for the real ONNX Runtime (a glibc library), a glibc build without tract that runs on the
//! private glibc in [`ENGINE_DIR`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use edge_config::Engine;

use crate::image::onnxruntime::{engine_libraries, loader_in_image, EngineLibrary, ENGINE_DIR};
use edge_config::Arch;

/// Binaries to use instead of building: a folder holding `<musl-target>/edge-init`,
/// `<musl-target>/edge-runtime` and `<gnu-target>/edge-runtime` (for machines without the
/// source tree's toolchain).
pub const PREBUILT_ENV: &str = "EDGEIMG_DEVICE_BINARIES";

#[derive(Debug, Clone)]
pub struct DeviceBinaries {
    pub init: PathBuf,
    pub runtime: PathBuf,
    /// What `runtime` loads from [`ENGINE_DIR`] (engine = onnxruntime; empty for tract).
    pub runtime_libraries: Vec<EngineLibrary>,
}

pub fn device_binaries(arch: Arch, engine: Engine, cache_dir: &Path) -> Result<DeviceBinaries> {
    match engine {
        Engine::Tract => {
            let dir = static_binaries(arch, &["edge-init", "edge-runtime"])?;
            Ok(DeviceBinaries {
                init: existing(&dir, "edge-init")?,
                runtime: existing(&dir, "edge-runtime")?,
                runtime_libraries: Vec::new(),
            })
        }
        Engine::Onnxruntime => {
            let init = existing(&static_binaries(arch, &["edge-init"])?, "edge-init")?;
            let runtime = glibc_runtime(arch)?;
            let runtime_libraries = engine_libraries(cache_dir, arch, &runtime)?;
            Ok(DeviceBinaries {
                init,
                runtime,
                runtime_libraries,
            })
        }
    }
}

/// The folder with the static musl builds of `packages` for `arch`.
fn static_binaries(arch: Arch, packages: &[&str]) -> Result<PathBuf> {
    let triple = arch.musl_target();
    if let Some(dir) = prebuilt(triple) {
        return Ok(dir);
    }
    let mut cmd = cargo("build", triple)?;
    for p in packages {
        cmd.args(["-p", p]);
    }
    run(cmd, triple)?;
    Ok(target_dir(&workspace_root()).join(triple).join("device"))
}

/// edge-runtime for `arch`'s glibc, ONNX Runtime only, linked to run on the image's private
/// glibc: [`ENGINE_DIR`]'s loader as interpreter and that folder as run path. On this machine
/// it also runs through the host's own loader (`Arch::glibc_loader`), which is how the host's
/// reference server uses it.
pub fn glibc_runtime(arch: Arch) -> Result<PathBuf> {
    let triple = arch.gnu_target();
    // A prebuilt folder staged for tract images only has no glibc build: build it then.
    if let Some(path) = prebuilt(triple).map(|d| d.join("edge-runtime")) {
        if path.is_file() {
            return Ok(path);
        }
    }
    let mut cmd = cargo("rustc", triple)?;
    cmd.args([
        "-p",
        "edge-runtime",
        "--bin",
        "edge-runtime",
        "--no-default-features",
    ])
    .arg("--")
    .arg(format!(
        "-Clink-arg=-Wl,--dynamic-linker={}",
        loader_in_image(arch)
    ))
    .arg(format!("-Clink-arg=-Wl,-rpath,{ENGINE_DIR}"));
    run(cmd, triple)?;
    existing(
        &target_dir(&workspace_root()).join(triple).join("device"),
        "edge-runtime",
    )
}

fn prebuilt(triple: &str) -> Option<PathBuf> {
    std::env::var_os(PREBUILT_ENV).map(|dir| PathBuf::from(dir).join(triple))
}

fn cargo(subcommand: &str, triple: &str) -> Result<Command> {
    let workspace = workspace_root();
    if !workspace.join("runtime/init/Cargo.toml").is_file() {
        bail!(
            "cannot build the device binaries: the edgeimg source tree is not at {}; set {PREBUILT_ENV} to a folder with {triple}/edge-init and {triple}/edge-runtime",
            workspace.display()
        );
    }
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(&workspace)
        .args([subcommand, "--profile", "device", "--target", triple])
        // The image's date is not the binaries' business, and the `cc` crate reruns build
        // scripts when it changes: a reproducible build must not recompile everything.
        .env_remove("SOURCE_DATE_EPOCH");
    if !std::io::stderr().is_terminal() {
        cmd.arg("--quiet");
    }
    Ok(cmd)
}

fn run(mut cmd: Command, triple: &str) -> Result<()> {
    let status = cmd.status().context(
        "cannot run cargo to build the device binaries; is Rust installed (tests/setup.sh)?",
    )?;
    if !status.success() {
        bail!("building the device binaries for {triple} failed (see cargo's output above); `rustup target add {triple}` if the target is missing");
    }
    Ok(())
}

fn existing(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!("{} is missing", path.display());
    }
    Ok(path)
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
