//! What the project's tests share, written once: the cache folder, wheels from PyPI and the
//! Python venv, the real Alpine root and kernel of either arch, the offline mirror, initramfs
//! and ext4 fixtures, and the device binaries. A dev-dependency of every crate whose tests need
//! one of them.
//!
//! Everything here panics with what is missing and how to get it: a test that cannot get what
//! it needs fails, it never skips.

pub mod alpine;
pub mod device;
pub mod ext4;
pub mod initramfs;
pub mod mirror;
pub mod wheels;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use edge_config::Arch;

/// The edgeimg cache (`$EDGEIMG_CACHE`, else `~/.cache/edgeimg`), shared with the builder.
pub fn cache_dir() -> PathBuf {
    edge_config::cache_dir().expect("a cache directory: set HOME or EDGEIMG_CACHE")
}

/// The workspace's root folder.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/support lives two levels below the workspace root")
        .to_path_buf()
}

/// Run a host tool and return its stdout; panics with its output when it cannot run or fails.
pub fn tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (tests/setup.sh installs the tools the tests use)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
