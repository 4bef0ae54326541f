//! Stamp files: a text fingerprint of the inputs, so finished work is skipped when unchanged.

use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

/// Accumulates a description of inputs (files by name, size and mtime, plus free-form lines).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn new(what: &str) -> Self {
        Fingerprint(format!("{what} format={}\n", crate::mirror::FORMAT_VERSION))
    }

    pub fn line(mut self, line: &str) -> Self {
        self.0.push_str(line);
        self.0.push('\n');
        self
    }

    pub fn file(mut self, path: &Path) -> Result<Self> {
        let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let _ = writeln!(self.0, "file {name} size={} mtime={mtime}", meta.len());
        Ok(self)
    }

    /// True when `stamp` exists and records exactly this fingerprint.
    pub fn matches(&self, stamp: &Path) -> bool {
        fs::read_to_string(stamp).is_ok_and(|s| s == self.0)
    }

    pub fn write(&self, stamp: &Path) -> Result<()> {
        fs::write(stamp, &self.0).with_context(|| format!("writing {}", stamp.display()))
    }
}
