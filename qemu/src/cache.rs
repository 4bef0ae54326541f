//! The edgeimg cache folder, where the harness keeps its KVM verdicts and finds the QEMU that
//! `tests/setup.sh` unpacks there.

use std::path::PathBuf;

/// `$EDGEIMG_CACHE`, else `$XDG_CACHE_HOME/edgeimg`, else `~/.cache/edgeimg`: the builder's rule.
pub(crate) fn edgeimg_cache_root() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("EDGEIMG_CACHE")
        .or_else(|| from("XDG_CACHE_HOME").map(|d| d.join("edgeimg")))
        .or_else(|| from("HOME").map(|d| d.join(".cache/edgeimg")))
}
