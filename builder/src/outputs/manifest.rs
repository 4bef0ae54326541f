//! `manifest.json`: what an image contains and how each output hashes, for `edgeimg inspect`,
//! fleet inventories and reproducibility checks.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::image::device::{DeviceBinaries, INIT_PATH, RUNTIME_PATH};
use crate::image::disk::DiskRecord;
use crate::image::kernel::Module;
use crate::image::onnxruntime::{EngineLibrary, ENGINE_DIR};
use crate::writers::atomic::AtomicFile;
use crate::writers::record::OutputRecord;

pub const MANIFEST_FILE: &str = "manifest.json";

/// What outputs say of a mirror that is a folder on the build host: its path belongs to that
/// host, and the packages are identified by their checksums anyway.
pub const LOCAL_MIRROR: &str = "(local folder)";

/// `location`, the mirror or a repository below it, as outputs record it: as it is when the
/// mirror is a URL; with the mirror's folder replaced by [`LOCAL_MIRROR`] when it is local
/// (`(local folder)/v3.23/main`).
pub fn published_location(mirror: &str, location: &str) -> String {
    if mirror.starts_with("https://") || mirror.starts_with("http://") {
        return location.to_string();
    }
    let below = location
        .trim_end_matches('/')
        .strip_prefix(mirror.trim_end_matches('/'))
        .unwrap_or_default();
    format!("{LOCAL_MIRROR}{below}")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub board: String,
    pub arch: String,
    pub recipe: String,
    pub source_date_epoch: u64,
    pub alpine: AlpineSource,
    pub packages: Vec<PackageRecord>,
    pub rootfs: RootfsSummary,
    /// Every model the image serves.
    #[serde(default)]
    pub models: Vec<ModelRecord>,
    /// The inference engine and the libraries it brings into the image.
    #[serde(default)]
    pub engine: Option<EngineRecord>,
    /// Our own binaries in the image: where they came from and how they hash.
    #[serde(default)]
    pub device_binaries: Option<DeviceBinariesRecord>,
    /// How to boot the image directly (kernel + initramfs), for `edgeimg run`/`test`.
    #[serde(default)]
    pub boot: Option<BootRecord>,
    /// The partitioned disk image, when one was built.
    #[serde(default)]
    pub disk: Option<DiskRecord>,
    /// Every kernel module the image ships, in load order, and why.
    #[serde(default)]
    pub kernel_modules: Vec<ModuleRecord>,
    pub outputs: Vec<OutputRecord>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Digest of everything the build read (see [`crate::outputs::freshness`]).
    #[serde(default)]
    pub inputs_sha256: Option<String>,
    /// What the packages would have put into the image and the image does not carry, and why.
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
}

/// Something kept out of the image on purpose (a package dependency, files under `/boot`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeftOut {
    pub what: String,
    /// Files and their bytes, where files were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    pub reason: String,
}

impl LeftOut {
    /// The dependencies a package was installed without, and why.
    pub fn dependencies(package: &str, dependencies: &[String], reason: &str) -> LeftOut {
        LeftOut {
            what: format!("{} (dependencies of {package})", dependencies.join(", ")),
            files: None,
            bytes: None,
            reason: reason.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlpineSource {
    pub mirror: String,
    pub branch: String,
    pub repositories: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PackageRecord {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub license: String,
    pub origin: String,
    /// The repository it came from ([`published_location`]).
    pub repository: String,
    /// The repository a device would fetch it from (the image's `/etc/apk/repositories`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_repository: Option<String>,
    /// The index's control checksum (`Q1...`).
    pub checksum: String,
    pub apk_sha256: String,
    pub size: u64,
    pub installed_size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootfsSummary {
    pub entries: usize,
    pub file_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelRecord {
    pub name: String,
    /// The recipe's file, or the url it was downloaded from.
    pub source: String,
    /// A downloaded model: the file inside the download (wheel, zip, tar) it was taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// A downloaded model: sha256 of the download, as the recipe pins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_sha256: Option<String>,
    /// sha256 of the model file (the member, for archives), before freezing.
    pub source_sha256: String,
    /// sha256 of the file in the image (dims frozen).
    pub sha256: String,
    pub path_in_image: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EngineRecord {
    /// `tract` or `onnxruntime`.
    pub name: String,
    /// engine = onnxruntime: libonnxruntime and its private glibc.
    #[serde(default)]
    pub libraries: Vec<LibraryRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LibraryRecord {
    pub path_in_image: String,
    pub package: String,
    pub version: String,
    pub size: u64,
    pub sha256: String,
}

impl EngineRecord {
    pub fn new(engine: edge_config::Engine, libraries: &[EngineLibrary]) -> Result<Self> {
        let libraries = libraries
            .iter()
            .map(|l| {
                let hashed = OutputRecord::of_file("library", &l.source)?;
                Ok(LibraryRecord {
                    path_in_image: format!("{ENGINE_DIR}/{}", l.file_name),
                    package: l.package.clone(),
                    version: l.version.clone(),
                    size: hashed.size,
                    sha256: hashed.sha256,
                })
            })
            .collect::<Result<_>>()?;
        let name = match engine {
            edge_config::Engine::Tract => "tract",
            edge_config::Engine::Onnxruntime => "onnxruntime",
        };
        Ok(EngineRecord {
            name: name.into(),
            libraries,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceBinariesRecord {
    /// `installed` (the folder of this edgeimg's version from its distribution), `folder`
    /// (named by `EDGEIMG_DEVICE_BINARIES`) or `source` (built by cargo in the source tree).
    pub origin: String,
    /// How they were found, in words: no host paths, so builds on two machines compare.
    pub found_as: String,
    /// The edgeimg commit they were built from.
    pub source_commit: String,
    pub files: Vec<BinaryRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BinaryRecord {
    pub name: String,
    pub path_in_image: String,
    /// Where it was taken from, relative to the origin's folder (the installed
    /// `share/edgeimg/<version>/`, the named folder, or the source tree).
    pub from: String,
    pub size: u64,
    pub sha256: String,
}

impl DeviceBinariesRecord {
    pub fn new(binaries: &DeviceBinaries) -> Result<Self> {
        let origin = &binaries.origin;
        let files = [
            ("edge-init", INIT_PATH, &binaries.init),
            ("edge-runtime", RUNTIME_PATH, &binaries.runtime),
        ]
        .into_iter()
        .map(|(name, path_in_image, source)| {
            let hashed = OutputRecord::of_file(name, source)?;
            Ok(BinaryRecord {
                name: name.into(),
                path_in_image: path_in_image.into(),
                from: source
                    .strip_prefix(&origin.base)
                    .unwrap_or(source)
                    .display()
                    .to_string(),
                size: hashed.size,
                sha256: hashed.sha256,
            })
        })
        .collect::<Result<_>>()?;
        Ok(DeviceBinariesRecord {
            origin: origin.kind.to_string(),
            found_as: origin.found_as.clone(),
            source_commit: origin.source_commit.clone(),
            files,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModuleRecord {
    pub name: String,
    pub path_in_image: String,
    /// `at boot` (by name, whatever the hardware), `by device` (its modalias) or `as needed`
    /// (with a module that needs it).
    pub loaded: String,
    /// A disk image's boot initramfs carries it too.
    pub boot_initramfs: bool,
    pub reasons: Vec<String>,
}

impl ModuleRecord {
    pub fn of(module: &Module) -> ModuleRecord {
        ModuleRecord {
            name: module.name.to_string(),
            path_in_image: module.path.to_absolute(),
            loaded: module.loaded.describe().into(),
            boot_initramfs: module.in_boot_initramfs,
            reasons: module.reasons.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BootRecord {
    /// Files in the output folder.
    pub kernel: String,
    pub initrd: Option<String>,
    pub dtb: Option<String>,
    pub cmdline: String,
    pub kernel_version: String,
    /// Modules the image ships, in load order (`Manifest::kernel_modules` says why).
    pub modules: Vec<String>,
    /// An empty ext4 disk (label `edge-data`) that init mounts at /data: written when model
    /// updates need a data partition and the image boots without a disk image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_disk: Option<String>,
}

impl Manifest {
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut out = AtomicFile::create(&dir.join(MANIFEST_FILE))?;
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        std::io::Write::write_all(out.file(), &json)?;
        out.commit()
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| {
            format!(
                "{} is not an edgeimg manifest.json (was it written by an older edgeimg?)",
                path.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_mirror_is_published_without_its_host_folder() {
        let local = "/home/me/.cache/edgeimg/mirror/";
        assert_eq!(published_location(local, local), "(local folder)");
        assert_eq!(
            published_location(local, "/home/me/.cache/edgeimg/mirror/v3.23/main"),
            "(local folder)/v3.23/main"
        );
        let cdn = "https://dl-cdn.alpinelinux.org/alpine";
        assert_eq!(
            published_location(cdn, &format!("{cdn}/v3.23/main")),
            format!("{cdn}/v3.23/main")
        );
    }
}
