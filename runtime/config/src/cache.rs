//! The host's edgeimg cache folder. Host-side, yet here: the builder, the QEMU harness, the
//! test mirror and the tests all depend on this crate already, and the rule needs only std, so
//! the device binaries that share the crate gain nothing from it.

use std::path::PathBuf;

/// The variable that puts the cache somewhere else.
pub const CACHE_ENV: &str = "EDGEIMG_CACHE";

/// `$EDGEIMG_CACHE`, else `$XDG_CACHE_HOME/edgeimg`, else `$HOME/.cache/edgeimg`; `None` when
/// none of them is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var(CACHE_ENV)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("edgeimg")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/edgeimg")))
}
