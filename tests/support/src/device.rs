//! Our device binaries, built the way `edgeimg build` builds them.

use std::path::PathBuf;

use crate::Arch;

/// The static musl `edge-init` for `arch` (`--profile device`), built by the builder's own
/// device stage (a no-op when cargo finds it up to date). Tests in one binary take turns.
pub fn edge_init(arch: Arch) -> PathBuf {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    edgeimg::image::device::edge_init(arch).unwrap_or_else(|e| panic!("{e:#}"))
}
