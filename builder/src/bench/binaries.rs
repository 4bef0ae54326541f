//! The device binaries, built once before anything is timed: a cold build measures what a
//! user with a built edgeimg waits for, not cargo compiling (or checking) edge-init.

use std::path::Path;

use anyhow::{Context, Result};
use edge_config::Engine;

use crate::image::device::{device_binaries, PREBUILT_ENV};
use edge_config::Arch;

/// Build (or reuse) the binaries for `arches`, copy them to `dir` in the layout
/// [`PREBUILT_ENV`] describes and point this process's later builds at them. A copy, so a
/// concurrent rebuild in the workspace cannot change them halfway through the benchmark.
pub fn stage(images: &[(Arch, Engine)], dir: &Path, cache_dir: &Path) -> Result<()> {
    if std::env::var_os(PREBUILT_ENV).is_some() {
        return Ok(());
    }
    for &(arch, engine) in images {
        let built = device_binaries(arch, engine, cache_dir)?;
        let runtime_target = match engine {
            Engine::Tract => arch.musl_target(),
            Engine::Onnxruntime => arch.gnu_target(),
        };
        for (from, target, name) in [
            (&built.init, arch.musl_target(), "edge-init"),
            (&built.runtime, runtime_target, "edge-runtime"),
        ] {
            let into = dir.join(target);
            std::fs::create_dir_all(&into)
                .with_context(|| format!("cannot create {}", into.display()))?;
            std::fs::copy(from, into.join(name))
                .with_context(|| format!("cannot copy {} to {}", from.display(), into.display()))?;
        }
    }
    // build() has no parameter for the binaries; the variable is its documented way in.
    // Set before any thread of ours reads the environment.
    std::env::set_var(PREBUILT_ENV, dir);
    Ok(())
}
