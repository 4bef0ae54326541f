//! Where downloaded inputs and extracted roots live (never inside the repository).

use anyhow::{Context, Result};
use std::path::PathBuf;

/// The edgeimg cache ([`edge_config::cache_dir`]).
pub fn cache_root() -> Result<PathBuf> {
    edge_config::cache_dir().context("cannot find a cache directory: set HOME or EDGEIMG_CACHE")
}

/// The default mirror location: `<cache>/mirror`.
pub fn default_mirror_dir() -> Result<PathBuf> {
    Ok(cache_root()?.join("mirror"))
}
