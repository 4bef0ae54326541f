//! The in-memory description of one package to write: metadata, scripts and content.

use std::path::PathBuf;

/// Package metadata, as Alpine's `.PKGINFO` and `APKINDEX` carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageMeta {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub description: String,
    pub url: String,
    pub license: String,
    pub origin: String,
    pub maintainer: Option<String>,
    pub build_time: u64,
    pub commit: Option<String>,
    pub depends: Vec<String>,
    pub provides: Vec<String>,
    pub install_if: Vec<String>,
    pub replaces: Vec<String>,
    pub provider_priority: Option<u32>,
    pub replaces_priority: Option<u32>,
    pub triggers: Vec<String>,
    pub installed_size: u64,
}

impl PackageMeta {
    /// Alpine's file name for the package: `<name>-<version>.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }
}

/// One install script (`pre-install`, `post-install`, `trigger`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub action: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file whose bytes are read from this host path when the package is written.
    File(PathBuf),
    Symlink(String),
}

/// One path of the package's data tar, relative to `/`, without a leading slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Alpine's recorded checksum (`Q1` + base64 SHA-1) when known, to detect local changes.
    pub expected_checksum: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageContent {
    pub meta: PackageMeta,
    pub scripts: Vec<Script>,
    pub entries: Vec<Entry>,
}
