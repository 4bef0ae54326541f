//! The model store on the data partition: `<store>/<name>/<version>/model.onnx`, and
//! `<store>/<name>/current`, the one small file that says which version serves. Every change
//! is written so that a power cut at any instant leaves either the old state or the new one:
//! a new file or folder gets a temporary name, is fsynced, renamed into place, and its parent
//! folder fsynced.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// The image's own model: always there (on the read-only root), never deleted.
pub const FACTORY_VERSION: u64 = 1;

/// Where an upload is written before it becomes a version folder.
const INCOMING: &str = ".incoming";
const CURRENT: &str = "current";
const CURRENT_TEMP: &str = ".current.tmp";
pub const MODEL_FILE: &str = "model.onnx";

/// What `current` names: a version and the sha256 its file must still have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub version: u64,
    pub sha256: String,
}

/// One model name's folder in the store.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    pub fn new(store: &Path, name: &str) -> ModelStore {
        ModelStore {
            dir: store.join(name),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn version_dir(&self, version: u64) -> PathBuf {
        self.dir.join(version.to_string())
    }

    pub fn model_file(&self, version: u64) -> PathBuf {
        self.version_dir(version).join(MODEL_FILE)
    }

    /// The folder an upload streams into, emptied of anything an earlier cut-off upload left.
    pub fn fresh_incoming(&self) -> Result<PathBuf> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating the model folder {}", self.dir.display()))?;
        let incoming = self.dir.join(INCOMING);
        remove_if_present(&incoming)?;
        fs::create_dir(&incoming).with_context(|| format!("creating {}", incoming.display()))?;
        Ok(incoming)
    }

    /// Makes the upload in the incoming folder version `version`: its file and folder are
    /// fsynced, then the folder is renamed into place and the rename made durable.
    pub fn commit_incoming(&self, version: u64) -> Result<PathBuf> {
        let incoming = self.dir.join(INCOMING);
        File::open(incoming.join(MODEL_FILE))
            .and_then(|f| f.sync_all())
            .context("syncing the uploaded model to disk")?;
        sync_dir(&incoming)?;
        let target = self.version_dir(version);
        remove_if_present(&target)?;
        fs::rename(&incoming, &target)
            .with_context(|| format!("renaming the upload to {}", target.display()))?;
        sync_dir(&self.dir)?;
        Ok(target.join(MODEL_FILE))
    }

    /// The version a new upload gets: one more than any version folder or `current` names.
    pub fn next_version(&self) -> u64 {
        let highest = self.versions().into_iter().max().unwrap_or(FACTORY_VERSION);
        let current = self.read_current().ok().flatten().map_or(0, |c| c.version);
        highest.max(current).max(FACTORY_VERSION) + 1
    }

    /// Version folders present (not the incoming one).
    pub fn versions(&self) -> Vec<u64> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut versions: Vec<u64> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        versions.sort_unstable();
        versions
    }

    /// `current`, if it exists; an error if it exists but cannot be read or parsed.
    pub fn read_current(&self) -> Result<Option<Current>> {
        let path = self.dir.join(CURRENT);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut words = text.split_whitespace();
        let (Some(version), Some(sha256), None) = (words.next(), words.next(), words.next()) else {
            bail!(
                "{} holds {text:?}, not \"<version> <sha256>\"",
                path.display()
            );
        };
        let version = version
            .parse()
            .with_context(|| format!("{} names version {version:?}", path.display()))?;
        Ok(Some(Current {
            version,
            sha256: sha256.to_string(),
        }))
    }

    /// Makes `current` name `current`, atomically and durably.
    pub fn write_current(&self, current: &Current) -> Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let temp = self.dir.join(CURRENT_TEMP);
        let mut file =
            File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        writeln!(file, "{} {}", current.version, current.sha256)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", temp.display()))?;
        fs::rename(&temp, self.dir.join(CURRENT))
            .with_context(|| format!("renaming {} into place", temp.display()))?;
        sync_dir(&self.dir)
    }

    /// The file `current` names, if it is there whole (its sha256 matches); why not otherwise.
    pub fn current_file(&self) -> Result<Option<(u64, PathBuf)>> {
        let Some(current) = self.read_current()? else {
            return Ok(None);
        };
        if current.version == FACTORY_VERSION {
            return Ok(None);
        }
        let path = self.model_file(current.version);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if sha256 != current.sha256 {
            bail!(
                "{} has sha256 {sha256}, but current says {}",
                path.display(),
                current.sha256
            );
        }
        Ok(Some((current.version, path)))
    }

    /// Removes every version folder but `keep`, and any cut-off upload. Only ever called once
    /// `current` names a version in `keep`, so nothing removed can be needed after a power cut.
    pub fn remove_all_but(&self, keep: &[u64]) -> Result<()> {
        remove_if_present(&self.dir.join(INCOMING))?;
        for version in self.versions() {
            if !keep.contains(&version) {
                remove_if_present(&self.version_dir(version))?;
            }
        }
        if self.dir.exists() {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Drops a cut-off or refused upload; nothing names it.
    pub fn discard_incoming(&self) {
        let _ = remove_if_present(&self.dir.join(INCOMING));
    }

    pub fn remove_version(&self, version: u64) -> Result<()> {
        remove_if_present(&self.version_dir(version))?;
        sync_dir(&self.dir)
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Makes a rename or a new entry in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the folder {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_current_and_cleanup() {
        let root = tempfile::tempdir().unwrap();
        let store = ModelStore::new(root.path(), "m");
        assert_eq!(store.read_current().unwrap(), None);
        assert_eq!(store.next_version(), 2);
        let incoming = store.fresh_incoming().unwrap();
        fs::write(incoming.join(MODEL_FILE), b"onnx").unwrap();
        let file = store.commit_incoming(2).unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"onnx");
        assert_eq!(store.next_version(), 3);
        let sha256 = hex::encode(Sha256::digest(b"onnx"));
        store
            .write_current(&Current {
                version: 2,
                sha256: sha256.clone(),
            })
            .unwrap();
        assert_eq!(store.current_file().unwrap(), Some((2, file.clone())));
        // A changed file is not served.
        fs::write(&file, b"onnY").unwrap();
        let err = format!("{:#}", store.current_file().unwrap_err());
        assert!(err.contains("current says"), "{err}");
        // A cut-off upload and stray versions go; the kept one stays.
        store.fresh_incoming().unwrap();
        fs::create_dir(store.version_dir(5)).unwrap();
        store.remove_all_but(&[2]).unwrap();
        assert_eq!(store.versions(), vec![2]);
        assert!(!store.dir().join(INCOMING).exists());
    }

    #[test]
    fn a_garbled_current_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let store = ModelStore::new(root.path(), "m");
        fs::create_dir_all(store.dir()).unwrap();
        fs::write(store.dir().join(CURRENT), "two\n").unwrap();
        assert!(store.read_current().is_err());
        fs::write(store.dir().join(CURRENT), "x y\n").unwrap();
        assert!(store.read_current().is_err());
    }
}
