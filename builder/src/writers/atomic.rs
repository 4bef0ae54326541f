//! All-or-nothing output files: written under a temporary name, renamed when complete.

use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

/// An output file being written. It lives as `.NAME.tmp-XXXX` next to its destination and
/// becomes `NAME` only on [`AtomicFile::commit`]; dropped uncommitted, it is removed, so a
/// failing writer never leaves a half-written image behind.
pub struct AtomicFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<Self> {
        let name = dest
            .file_name()
            .with_context(|| format!("output path {} has no file name", dest.display()))?
            .to_string_lossy()
            .into_owned();
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp-"))
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "cannot create a temporary file in {} for {name}; does the output directory exist and is it writable?",
                    dir.display()
                )
            })?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// The temporary path, for external tools (mke2fs, qemu-img) that write by name.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn destination(&self) -> &Path {
        &self.dest
    }

    /// Flush to disk and rename into place. Mode 0644 regardless of umask, so outputs do not
    /// depend on who built them.
    pub fn commit(self) -> Result<()> {
        let dest = self.dest;
        let file = self.tmp.as_file();
        file.set_permissions(Permissions::from_mode(0o644))
            .and_then(|_| file.sync_all())
            .with_context(|| format!("cannot flush {}", dest.display()))?;
        self.tmp
            .persist(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot rename the finished output to {}", dest.display()))?;
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            // The rename itself is only durable once the directory is synced.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .or_else(ignore_unsupported)?;
        }
        Ok(())
    }
}

fn ignore_unsupported(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::Unsupported || e.raw_os_error() == Some(libc::EINVAL) {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_renames_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.img");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.file().write_all(b"hello").unwrap();
        assert!(f
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".out.img.tmp-"));
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);

        let mut g = AtomicFile::create(&dir.path().join("failed.img")).unwrap();
        g.file().write_all(b"partial").unwrap();
        drop(g);
        assert_eq!(names(dir.path()), ["out.img"]);
    }
}
