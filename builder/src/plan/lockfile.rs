//! The `RECIPE.lock` format and reading it: exactly what a recipe built, so the next build
//! installs the same thing. Package versions and checksums, the repositories and the
//! fingerprints of the keys trusted for them, the kernel, the model's sha256, the ONNX Runtime
//! engine's libraries and the source date. The plan pins every package to its locked version
//! and takes the source date from it; `outputs::lock` writes it from a build and
//! checks a locked build against it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub(crate) const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub format: u32,
    /// Every timestamp in the image (unless `SOURCE_DATE_EPOCH` overrides it).
    pub source_date_epoch: u64,
    pub alpine: LockedAlpine,
    pub kernel: LockedPackageRef,
    /// The one model's sha256, in locks written before recipes had several models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// Every model the recipe serves: its name and the sha256 of the file it is made from.
    #[serde(default, rename = "model")]
    pub models: Vec<LockedModel>,
    #[serde(rename = "package")]
    pub packages: Vec<LockedPackage>,
    /// engine = onnxruntime: libonnxruntime and its private glibc, as the image carries them.
    #[serde(default, rename = "engine_library")]
    pub engine_libraries: Vec<LockedEngineLibrary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedModel {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedEngineLibrary {
    pub file: String,
    pub package: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedAlpine {
    pub branch: String,
    pub repositories: Vec<String>,
    /// sha256 of each extra key trusted for the mirror (Alpine's own keys are built in).
    pub key_fingerprints: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackageRef {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// The index's control checksum (`Q1...`).
    pub checksum: String,
    pub apk_sha256: String,
}

/// `recipes/pi.toml` -> `recipes/pi.toml.lock`.
pub fn lock_path(recipe: &Path) -> PathBuf {
    let mut name = recipe.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl Lockfile {
    pub fn read(path: &Path) -> Result<Lockfile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the lock file {}", path.display()))?;
        let lock: Lockfile = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not an edgeimg lock file; delete it and run `edgeimg lock` again",
                path.display()
            )
        })?;
        if lock.format != FORMAT {
            bail!(
                "{} has lock format {}, this edgeimg reads {FORMAT}; run `edgeimg lock` again",
                path.display(),
                lock.format
            );
        }
        Ok(lock)
    }

    /// The locked models' sha256s, in the recipe's order (a one-model lock of the old form
    /// included).
    pub fn model_sha256s(&self) -> Vec<&str> {
        match &self.model_sha256 {
            Some(sha) if self.models.is_empty() => vec![sha.as_str()],
            _ => self.models.iter().map(|m| m.sha256.as_str()).collect(),
        }
    }

    /// apk world entries that pin every locked package to its version.
    pub fn pins(&self) -> Vec<String> {
        self.packages
            .iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect()
    }
}
