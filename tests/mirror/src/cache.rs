//! Where downloaded inputs and extracted roots live (never inside the repository).

use anyhow::{bail, Result};
use std::path::PathBuf;

/// `$EDGEIMG_CACHE`, else `$XDG_CACHE_HOME/edgeimg`, else `$HOME/.cache/edgeimg`.
pub fn cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("EDGEIMG_CACHE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("edgeimg"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("edgeimg")),
        None => bail!("cannot find a cache directory: set HOME or EDGEIMG_CACHE"),
    }
}

/// The default mirror location: `<cache>/mirror`.
pub fn default_mirror_dir() -> Result<PathBuf> {
    Ok(cache_root()?.join("mirror"))
}
