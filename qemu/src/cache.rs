//! The edgeimg cache folder, where the harness keeps its KVM verdicts and finds the QEMU that
//! `tests/setup.sh` unpacks there.

use std::path::PathBuf;

fn from(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `$EDGEIMG_CACHE`, else `$XDG_CACHE_HOME/edgeimg`, else `~/.cache/edgeimg`: the builder's rule.
pub(crate) fn edgeimg_cache_root() -> Option<PathBuf> {
    from("EDGEIMG_CACHE").or_else(default_cache_root)
}

/// Where the cache is when `$EDGEIMG_CACHE` does not move it (tests move it to a scratch
/// folder; what `tests/setup.sh` unpacked stays here).
pub(crate) fn default_cache_root() -> Option<PathBuf> {
    from("XDG_CACHE_HOME")
        .map(|d| d.join("edgeimg"))
        .or_else(|| from("HOME").map(|d| d.join(".cache/edgeimg")))
}
