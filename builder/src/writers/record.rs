//! The record of one finished output file: its kind, name, size and sha256, as `manifest.json`
//! lists it. Here, below every stage that writes files, so each can hash what it wrote.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::extents::copy_sparse_to;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputRecord {
    pub kind: String,
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

impl OutputRecord {
    /// Hash a finished output file.
    pub fn of_file(kind: &str, path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut hasher = Sha256::new();
        let size = copy_sparse_to(&file, &mut hasher)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(OutputRecord {
            kind: kind.to_string(),
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}
