//! Our own binaries for the device (`edge-init`, `edge-runtime`) for the image's arch, and, for
//! `engine = "onnxruntime"`, the shared libraries that runtime loads.
//!
//! edge-init is always the static musl build. edge-runtime is the static musl build with tract,
//! or, for the real ONNX Runtime (a glibc library), a glibc build without tract that runs on the
//! private glibc in [`ENGINE_DIR`](crate::image::onnxruntime::ENGINE_DIR).
//!
//! Where they come from ([`SELECT_ENV`] chooses; by default the first that applies):
//! - the source tree, built with cargo, when this edgeimg runs from it (`cargo run`, tests);
//! - the installed folder of this edgeimg's version ([`folder::installed_locations`]);
//! - the source tree this edgeimg was compiled from, if it is still there.
//!
//! Building from source always says why in one line first.

pub mod folder;
pub mod source;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Result};
use edge_config::{Arch, Engine};

use crate::image::onnxruntime::{engine_libraries, EngineLibrary};
use folder::{find_installed, installed_locations, BinaryFolder, BinaryKind, VERSION};
use source::SourceTree;

/// `source`, `installed`, or a folder laid out like an installed one (`<target>/<binary>`);
/// unset: see the module documentation.
pub const SELECT_ENV: &str = "EDGEIMG_DEVICE_BINARIES";

#[derive(Debug, Clone)]
pub struct DeviceBinaries {
    pub init: PathBuf,
    pub runtime: PathBuf,
    /// What `runtime` loads from `ENGINE_DIR` (engine = onnxruntime; empty for tract).
    pub runtime_libraries: Vec<EngineLibrary>,
    pub origin: Origin,
}

/// Where a build's device binaries came from, for its manifest and SBOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `installed`, `folder` or `source`.
    pub kind: &'static str,
    /// How they were found, in words without host paths.
    pub found_as: String,
    /// The folder the binaries' paths are relative to in the manifest.
    pub base: PathBuf,
    /// `git describe` of the tree they were built from.
    pub source_commit: String,
}

/// Who provides the binaries in this run.
#[derive(Debug, Clone)]
pub enum Provider {
    Folder {
        kind: &'static str,
        folder: BinaryFolder,
    },
    Source {
        tree: SourceTree,
        reason: String,
    },
}

impl Provider {
    /// What [`SELECT_ENV`] and the running edgeimg's whereabouts choose. A source build is
    /// announced, with its reason, once per run.
    pub fn select() -> Result<Provider> {
        let chosen = std::env::var(SELECT_ENV).unwrap_or_default();
        let provider = match chosen.as_str() {
            "source" => match SourceTree::of_this_build() {
                Some(tree) => Provider::Source {
                    reason: format!("{SELECT_ENV}=source"),
                    tree,
                },
                None => bail!(
                    "{SELECT_ENV}=source, but the source tree this edgeimg was built from is gone ({}); unset it to use the installed device binaries",
                    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("/")).display()
                ),
            },
            "installed" => match find_installed()? {
                Some(folder) => Provider::Folder { kind: "installed", folder },
                None => bail!("{SELECT_ENV}=installed, but {}", not_installed()),
            },
            "" => Self::by_default()?,
            dir => Provider::Folder {
                kind: "folder",
                folder: BinaryFolder::named(Path::new(dir), SELECT_ENV)?,
            },
        };
        Ok(provider)
    }

    fn by_default() -> Result<Provider> {
        let tree = SourceTree::of_this_build();
        if let Some(tree) = tree.clone().filter(SourceTree::built_the_running_edgeimg) {
            return Ok(Provider::Source {
                reason: "this edgeimg runs from its source tree".into(),
                tree,
            });
        }
        if let Some(folder) = find_installed()? {
            return Ok(Provider::Folder {
                kind: "installed",
                folder,
            });
        }
        match tree {
            Some(tree) => Ok(Provider::Source {
                reason: format!("{}, and the tree it was built from is still here", not_installed()),
                tree,
            }),
            None => bail!(
                "{}; install edgeimg from its distribution archive (README, \"Install\"), or set {SELECT_ENV} to a folder holding <target>/edge-init and <target>/edge-runtime",
                not_installed()
            ),
        }
    }

    /// The binaries for an image of `arch` serving with `engine`.
    pub fn binaries(&self, arch: Arch, engine: Engine, cache_dir: &Path) -> Result<DeviceBinaries> {
        let runtime_kind = match engine {
            Engine::Tract => BinaryKind::StaticRuntime,
            Engine::Onnxruntime => BinaryKind::GlibcRuntime,
        };
        let (init, runtime) = match self {
            Provider::Folder { folder, .. } => (
                folder.file(arch, BinaryKind::Init)?,
                folder.file(arch, runtime_kind)?,
            ),
            Provider::Source { tree, reason } => {
                announce(tree, reason);
                match engine {
                    Engine::Tract => {
                        let built = tree.build_static(arch, &[BinaryKind::Init, runtime_kind])?;
                        (built[0].clone(), built[1].clone())
                    }
                    Engine::Onnxruntime => {
                        let init = tree.build_static(arch, &[BinaryKind::Init])?.remove(0);
                        (init, tree.build_glibc_runtime(arch)?)
                    }
                }
            }
        };
        let runtime_libraries = match engine {
            Engine::Tract => Vec::new(),
            Engine::Onnxruntime => engine_libraries(cache_dir, arch, &runtime)?,
        };
        Ok(DeviceBinaries {
            init,
            runtime,
            runtime_libraries,
            origin: self.origin(),
        })
    }

    /// The static edge-init for `arch` alone (init's own boot tests).
    pub fn edge_init(&self, arch: Arch) -> Result<PathBuf> {
        match self {
            Provider::Folder { folder, .. } => folder.file(arch, BinaryKind::Init),
            Provider::Source { tree, reason } => {
                announce(tree, reason);
                Ok(tree.build_static(arch, &[BinaryKind::Init])?.remove(0))
            }
        }
    }

    /// The glibc edge-runtime for `arch` alone (the host's reference server).
    pub fn glibc_runtime(&self, arch: Arch) -> Result<PathBuf> {
        match self {
            Provider::Folder { folder, .. } => folder.file(arch, BinaryKind::GlibcRuntime),
            Provider::Source { tree, reason } => {
                announce(tree, reason);
                tree.build_glibc_runtime(arch)
            }
        }
    }

    pub fn origin(&self) -> Origin {
        match self {
            Provider::Folder { kind, folder } => Origin {
                kind,
                found_as: folder.found_as.clone(),
                base: folder.dir.clone(),
                source_commit: folder.source_commit(),
            },
            Provider::Source { tree, reason } => Origin {
                kind: "source",
                found_as: format!("built by cargo in the edgeimg source tree ({reason})"),
                base: tree.root.clone(),
                source_commit: tree.commit(),
            },
        }
    }
}

/// The binaries for an image of `arch` serving with `engine`, from [`Provider::select`].
pub fn device_binaries(arch: Arch, engine: Engine, cache_dir: &Path) -> Result<DeviceBinaries> {
    Provider::select()?.binaries(arch, engine, cache_dir)
}

/// The static edge-init for `arch`, from [`Provider::select`].
pub fn edge_init(arch: Arch) -> Result<PathBuf> {
    Provider::select()?.edge_init(arch)
}

/// The glibc edge-runtime for `arch`, from [`Provider::select`].
pub fn glibc_runtime(arch: Arch) -> Result<PathBuf> {
    Provider::select()?.glibc_runtime(arch)
}

fn not_installed() -> String {
    let looked: Vec<String> = installed_locations()
        .iter()
        .map(|(dir, _)| dir.display().to_string())
        .collect();
    format!(
        "no device binaries are installed for edgeimg {VERSION} (looked in {})",
        looked.join(", ")
    )
}

/// Say once per run, on stderr, that and why the binaries are built from source.
fn announce(tree: &SourceTree, reason: &str) {
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let line = format!(
        "edgeimg: building the device binaries from source in {} ({reason}); cargo rebuilds only what changed",
        tree.root.display()
    );
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.insert(line.clone()) {
        eprintln!("{line}");
    }
}
