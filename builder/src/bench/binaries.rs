//! The device binaries, built once before anything is timed: a cold build measures what a
//! user with a built edgeimg waits for, not cargo compiling (or checking) edge-init.

use std::path::Path;

use anyhow::{Context, Result};
use edge_config::Engine;

use crate::image::device::folder::BinaryKind;
use crate::image::device::{Provider, SELECT_ENV};
use edge_config::Arch;

/// Build (or reuse) the binaries for `arches`, copy them to `dir` in the folder layout
/// [`SELECT_ENV`] accepts and point this process's later builds at them. A copy, so a
/// concurrent rebuild in the workspace cannot change them halfway through the benchmark.
pub fn stage(images: &[(Arch, Engine)], dir: &Path, cache_dir: &Path) -> Result<()> {
    if std::env::var_os(SELECT_ENV).is_some_and(|v| v != "source" && v != "installed") {
        return Ok(());
    }
    let provider = Provider::select()?;
    for &(arch, engine) in images {
        let built = provider.binaries(arch, engine, cache_dir)?;
        let runtime = match engine {
            Engine::Tract => BinaryKind::StaticRuntime,
            Engine::Onnxruntime => BinaryKind::GlibcRuntime,
        };
        for (from, kind) in [(&built.init, BinaryKind::Init), (&built.runtime, runtime)] {
            let into = dir.join(kind.relative_path(arch));
            let parent = into.parent().expect("<target>/<name>");
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            std::fs::copy(from, &into)
                .with_context(|| format!("cannot copy {} to {}", from.display(), into.display()))?;
        }
    }
    // build() has no parameter for the binaries; the variable is its documented way in.
    // Set before any thread of ours reads the environment.
    std::env::set_var(SELECT_ENV, dir);
    Ok(())
}
