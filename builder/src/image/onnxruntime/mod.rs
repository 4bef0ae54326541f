//! The real ONNX Runtime as the image's engine (`engine = "onnxruntime"`).
//!
//! The only libonnxruntime we can get offline is the manylinux build in the official wheel, and
//! it needs glibc, while the image's userland is Alpine's musl. So the image carries a private
//! glibc world in [`ENGINE_DIR`]: glibc's own loader, the glibc, libstdc++ and libgcc_s shared
//! objects that the glibc build of edge-runtime and libonnxruntime ask for (their `DT_NEEDED`
//! closure, nothing more), and libonnxruntime itself. edge-runtime's glibc build names that
//! loader as its interpreter and that folder as its run path, and libonnxruntime finds its
//! dependencies through its own `$ORIGIN` run path, so nothing outside the folder is used and
//! the musl side of the image is untouched. glibc, libstdc++ and libgcc_s come from Debian's
//! `*-cross` packages for the image's arch (arch-independent packages, the same on any host).

mod elf;
mod glibc;
mod wheel;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use edge_config::Arch;

pub use glibc::cross_files;
pub use wheel::{onnxruntime_cached, onnxruntime_library, LIBRARY_ENV, ORT_VERSION};

/// Where the engine's libraries and their private glibc live in the image.
pub const ENGINE_DIR: &str = "/usr/lib/edgeimg/onnxruntime";

/// One shared object the engine needs, as the image carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineLibrary {
    /// Its name in [`ENGINE_DIR`]: the name the loader looks for (`DT_NEEDED` or interpreter).
    pub file_name: String,
    /// Where the bytes come from on this machine.
    pub source: PathBuf,
    /// The package it comes from, for the SBOM.
    pub package: String,
    pub version: String,
    /// Who supplies that package and how we got it.
    pub origin: String,
    /// SPDX license expression.
    pub license: String,
}

/// The loader path the glibc build of edge-runtime is linked with.
pub fn loader_in_image(arch: Arch) -> String {
    format!("{ENGINE_DIR}/{}", arch.glibc_loader().0)
}

/// Everything `runtime` (the glibc build of edge-runtime) needs in [`ENGINE_DIR`] to run the
/// real ONNX Runtime on `arch`: libonnxruntime and the glibc closure of both, by file name.
pub fn engine_libraries(
    cache_dir: &Path,
    arch: Arch,
    runtime: &Path,
) -> Result<Vec<EngineLibrary>> {
    let interpreter = elf::interpreter(runtime)?;
    if interpreter.as_deref() != Some(loader_in_image(arch).as_str()) {
        bail!(
            "{} asks for the loader {interpreter:?}, not {}: it is not the glibc build of edge-runtime for {}",
            runtime.display(),
            loader_in_image(arch),
            arch.alpine()
        );
    }
    let library = onnxruntime_library(cache_dir, arch)?;
    let library_name = file_name(&library)?;

    let cross = glibc::CrossLibs::locate(arch)?;
    let mut wanted: BTreeSet<String> = [arch.glibc_loader().0.to_string()].into();
    wanted.extend(elf::needed(runtime)?);
    wanted.extend(elf::needed(&library)?);
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    while let Some(name) = wanted.pop_first() {
        if found.contains_key(&name) || name == library_name {
            continue;
        }
        let path = cross.find(&name)?;
        wanted.extend(
            elf::needed(&path)?
                .into_iter()
                .filter(|n| !found.contains_key(n)),
        );
        found.insert(name, path);
    }

    let owners = cross.owners(found.values())?;
    let mut libraries = vec![EngineLibrary {
        file_name: library_name,
        source: library,
        package: "onnxruntime".into(),
        version: ORT_VERSION.into(),
        origin: format!(
            "PyPI: the onnxruntime {ORT_VERSION} wheel for manylinux_2_28_{}",
            arch.alpine()
        ),
        license: "MIT".into(),
    }];
    for (name, path) in found {
        let owner = owners
            .get(&path)
            .with_context(|| format!("no Debian package owns {}", path.display()))?;
        libraries.push(EngineLibrary {
            file_name: name,
            source: path,
            package: owner.package.clone(),
            version: owner.version.clone(),
            origin: format!(
                "Debian: {} {} (installed by apt)",
                owner.package, owner.version
            ),
            license: owner.license().into(),
        });
    }
    libraries.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(libraries)
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no file name", path.display()))
}
