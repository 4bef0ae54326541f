//! Building edge-init as a static musl binary for a guest architecture.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::alpine::Arch;

/// Builds edge-init for `arch` (`--profile device`, musl); once per arch per test run.
pub fn edge_init(arch: Arch) -> PathBuf {
    // Tests run in parallel: one cargo at a time (cargo is a no-op once built).
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let target = arch.musl_target();
    // A target dir of its own: the outer `cargo test` may hold the lock on the usual one.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("edge-init-musl");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "--profile", "device", "-p", "edge-init"])
        .args(["--target", target])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo");
    assert!(status.success(), "building edge-init for {target} failed");
    target_dir.join(target).join("device/edge-init")
}
