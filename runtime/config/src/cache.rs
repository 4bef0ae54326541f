//! The host's edgeimg cache folder. Host-side, yet here: the builder, the QEMU harness, the
//! test mirror and the tests all depend on this crate already, and the rule needs only std, so
//! the device binaries that share the crate gain nothing from it.

use std::path::PathBuf;

/// The variable that puts the cache somewhere else.
pub const CACHE_ENV: &str = "EDGEIMG_CACHE";

/// `$EDGEIMG_CACHE`, else [`default_cache_dir`]; `None` when none of their variables is set.
pub fn cache_dir() -> Option<PathBuf> {
    var(CACHE_ENV).or_else(default_cache_dir)
}

/// Where the cache is when `$EDGEIMG_CACHE` does not move it: `$XDG_CACHE_HOME/edgeimg`, else
/// `$HOME/.cache/edgeimg` (tests move the cache to a scratch folder; what `tests/setup.sh`
/// unpacked stays here).
pub fn default_cache_dir() -> Option<PathBuf> {
    var("XDG_CACHE_HOME")
        .map(|d| d.join("edgeimg"))
        .or_else(|| var("HOME").map(|d| d.join(".cache/edgeimg")))
}

fn var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
