//! A folder of prebuilt device binaries: `<rust-target>/<binary>` for each arch, with an index
//! (`device-binaries.json`) naming the edgeimg version they belong to, the source commit they
//! were built from and each file's sha256. edgeimg's distribution installs one as
//! `share/edgeimg/<version>/` beside `bin/edgeimg` (or in an XDG data folder), `cargo xtask
//! dist` writes it, and `EDGEIMG_DEVICE_BINARIES` may name any folder laid out the same way.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edge_config::Arch;
use serde::{Deserialize, Serialize};

use crate::writers::record::OutputRecord;

/// The index of a folder, beside the per-target folders.
pub const INDEX_FILE: &str = "device-binaries.json";

/// The edgeimg version whose binaries an installed folder must hold.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One of the binaries the device side is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    /// `edge-init`, static musl (every image).
    Init,
    /// `edge-runtime`, static musl with tract (engine = "tract").
    StaticRuntime,
    /// `edge-runtime`, glibc without tract, for the real ONNX Runtime (engine = "onnxruntime").
    GlibcRuntime,
}

impl BinaryKind {
    pub const ALL: [BinaryKind; 3] = [
        BinaryKind::Init,
        BinaryKind::StaticRuntime,
        BinaryKind::GlibcRuntime,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            BinaryKind::Init => "edge-init",
            BinaryKind::StaticRuntime | BinaryKind::GlibcRuntime => "edge-runtime",
        }
    }

    pub fn target(self, arch: Arch) -> &'static str {
        match self {
            BinaryKind::Init | BinaryKind::StaticRuntime => arch.musl_target(),
            BinaryKind::GlibcRuntime => arch.gnu_target(),
        }
    }

    /// Where the binary lives in a folder: `<target>/<name>`.
    pub fn relative_path(self, arch: Arch) -> String {
        format!("{}/{}", self.target(arch), self.file_name())
    }
}

/// `device-binaries.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderIndex {
    pub edgeimg_version: String,
    /// `git describe` of the tree they were built from (`-dirty` with local changes).
    pub source_commit: String,
    pub files: Vec<IndexedFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedFile {
    /// Relative to the folder, e.g. `aarch64-unknown-linux-musl/edge-init`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

impl FolderIndex {
    /// Hash every binary of every arch in `dir` and write the index there.
    pub fn write(dir: &Path, source_commit: &str) -> Result<FolderIndex> {
        let mut files = Vec::new();
        for arch in Arch::ALL {
            for kind in BinaryKind::ALL {
                let path = kind.relative_path(arch);
                let hashed = OutputRecord::of_file(kind.file_name(), &dir.join(&path))?;
                files.push(IndexedFile {
                    path,
                    size: hashed.size,
                    sha256: hashed.sha256,
                });
            }
        }
        let index = FolderIndex {
            edgeimg_version: VERSION.to_string(),
            source_commit: source_commit.to_string(),
            files,
        };
        let mut json = serde_json::to_vec_pretty(&index)?;
        json.push(b'\n');
        let path = dir.join(INDEX_FILE);
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(index)
    }

    fn read(path: &Path) -> Result<FolderIndex> {
        let text =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&text)
            .with_context(|| format!("{} is not an edgeimg {INDEX_FILE}", path.display()))
    }
}

/// A folder of device binaries, and how this edgeimg came to use it.
#[derive(Debug, Clone)]
pub struct BinaryFolder {
    pub dir: PathBuf,
    pub index: Option<FolderIndex>,
    /// Where it was found, in words without host paths (for manifests): "installed beside
    /// edgeimg", "the XDG data folder", "EDGEIMG_DEVICE_BINARIES".
    pub found_as: String,
}

impl BinaryFolder {
    /// A folder named by the user: its index is read when it has one.
    pub fn named(dir: &Path, found_as: &str) -> Result<BinaryFolder> {
        if !dir.is_dir() {
            bail!("{found_as} names {}, which is not a folder", dir.display());
        }
        let index_path = dir.join(INDEX_FILE);
        let index = if index_path.is_file() {
            Some(FolderIndex::read(&index_path)?)
        } else {
            None
        };
        Ok(BinaryFolder {
            dir: dir.to_path_buf(),
            index,
            found_as: found_as.to_string(),
        })
    }

    /// An installed folder: it must have an index for this edgeimg's version.
    fn installed(dir: PathBuf, found_as: &str) -> Result<BinaryFolder> {
        let index = FolderIndex::read(&dir.join(INDEX_FILE))?;
        if index.edgeimg_version != VERSION {
            bail!(
                "{} holds device binaries of edgeimg {}, and this is edgeimg {VERSION}",
                dir.display(),
                index.edgeimg_version
            );
        }
        Ok(BinaryFolder {
            dir,
            index: Some(index),
            found_as: found_as.to_string(),
        })
    }

    /// The binary of `kind` for `arch`, checked against the index's sha256 when there is one.
    pub fn file(&self, arch: Arch, kind: BinaryKind) -> Result<PathBuf> {
        let relative = kind.relative_path(arch);
        let path = self.dir.join(&relative);
        if !path.is_file() {
            bail!(
                "{} has no {relative} (the {} binary for {arch}; {})",
                self.dir.display(),
                kind.file_name(),
                self.found_as
            );
        }
        if let Some(index) = &self.index {
            let listed = index
                .files
                .iter()
                .find(|f| f.path == relative)
                .with_context(|| {
                    format!(
                        "{} does not list {relative}",
                        self.dir.join(INDEX_FILE).display()
                    )
                })?;
            let now = OutputRecord::of_file(kind.file_name(), &path)?;
            if now.sha256 != listed.sha256 {
                bail!(
                    "{} has sha256 {} but {INDEX_FILE} says {}: the installed device binaries were changed; reinstall edgeimg",
                    path.display(),
                    now.sha256,
                    listed.sha256
                );
            }
        }
        Ok(path)
    }

    /// The commit the binaries were built from, when the folder says.
    pub fn source_commit(&self) -> String {
        self.index
            .as_ref()
            .map(|i| i.source_commit.clone())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// Where an installed edgeimg looks for the device binaries of its version, in order, with
/// how each is described: `../share/edgeimg/<version>` beside the executable, then
/// `$XDG_DATA_HOME/edgeimg/<version>` (`~/.local/share`), then each of `$XDG_DATA_DIRS`
/// (`/usr/local/share:/usr/share`).
pub fn installed_locations() -> Vec<(PathBuf, String)> {
    let mut places = Vec::new();
    if let Some(prefix) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
    {
        places.push((
            prefix.join("share/edgeimg").join(VERSION),
            "installed beside edgeimg".to_string(),
        ));
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/share")));
    if let Some(dir) = data_home {
        places.push((
            dir.join("edgeimg").join(VERSION),
            "installed in the XDG data home".to_string(),
        ));
    }
    let data_dirs = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".to_string());
    for dir in data_dirs.split(':').filter(|d| !d.is_empty()) {
        places.push((
            Path::new(dir).join("edgeimg").join(VERSION),
            "installed in an XDG data folder".to_string(),
        ));
    }
    places
}

/// The first installed folder for this version. A folder that exists but is broken (another
/// version's index, unreadable) is an error rather than skipped: it is what the user installed.
pub fn find_installed() -> Result<Option<BinaryFolder>> {
    for (dir, found_as) in installed_locations() {
        if dir.join(INDEX_FILE).is_file() {
            return BinaryFolder::installed(dir, &found_as).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_with_every_binary() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for arch in Arch::ALL {
            for kind in BinaryKind::ALL {
                let path = dir.path().join(kind.relative_path(arch));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, format!("{arch} {kind:?}")).unwrap();
            }
        }
        dir
    }

    #[test]
    fn an_indexed_folder_hands_out_its_files_and_refuses_a_changed_one() {
        let dir = folder_with_every_binary();
        let index = FolderIndex::write(dir.path(), "abc123").unwrap();
        assert_eq!(index.files.len(), 6);
        let folder = BinaryFolder::installed(dir.path().to_path_buf(), "test").unwrap();
        let init = folder.file(Arch::Aarch64, BinaryKind::Init).unwrap();
        assert!(init.ends_with("aarch64-unknown-linux-musl/edge-init"));
        assert_eq!(folder.source_commit(), "abc123");

        std::fs::write(&init, b"tampered").unwrap();
        let err = folder
            .file(Arch::Aarch64, BinaryKind::Init)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("were changed") && err.contains("reinstall"),
            "{err}"
        );
    }

    #[test]
    fn an_installed_folder_of_another_version_is_refused_by_name() {
        let dir = folder_with_every_binary();
        FolderIndex::write(dir.path(), "abc").unwrap();
        let path = dir.path().join(INDEX_FILE);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(VERSION, "0.0.0-other");
        std::fs::write(&path, text).unwrap();
        let err = BinaryFolder::installed(dir.path().to_path_buf(), "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("edgeimg 0.0.0-other") && err.contains(VERSION),
            "{err}"
        );
    }

    #[test]
    fn a_named_folder_without_the_binary_says_which_file_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let folder = BinaryFolder::named(dir.path(), "EDGEIMG_DEVICE_BINARIES").unwrap();
        let err = folder
            .file(Arch::X86_64, BinaryKind::GlibcRuntime)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x86_64-unknown-linux-gnu/edge-runtime")
                && err.contains("EDGEIMG_DEVICE_BINARIES"),
            "{err}"
        );
    }

    #[test]
    fn installed_locations_start_beside_the_executable_then_follow_xdg() {
        let places = installed_locations();
        let exe_prefix = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        assert_eq!(places[0].0, exe_prefix.join("share/edgeimg").join(VERSION));
        assert!(places
            .iter()
            .all(|(p, _)| p.ends_with(format!("edgeimg/{VERSION}"))));
        assert!(places.len() >= 3, "{places:?}");
    }
}
