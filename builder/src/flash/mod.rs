//! `edgeimg flash`: write a disk image to an SD card or USB disk, guarded, sparse and verified.
//!
//! The steps, each of which can refuse before the next: read the image and its `.bmap`
//! ([`source`]); find out what the target is and refuse the system disk, anything mounted, a
//! disk too small, a non-removable disk without `--force`, a regular file without `--file`
//! ([`target`], from [`sysfs`]); then, after the caller's confirmation, check the image
//! against the bmap's checksums before the first write, write only the mapped ranges in
//! aligned chunks, sync, and read every written range back to compare its sha256 ([`write`](mod@write)).
//!
//! On a disk, the ranges the bmap leaves out keep whatever the card held before, as with
//! `bmaptool copy`: the image's file systems never read them (our ext4 writer zeroes what
//! the kernel would read). A file target is a fresh sparse file, so they read as zeros; it
//! is written under a temporary name and renamed when verified, so a failed or interrupted
//! flash leaves an existing file as it was.

pub mod source;
pub mod sysfs;
pub mod target;
pub mod write;

pub use source::{BmapChoice, Source};
pub use sysfs::SystemPaths;
pub use target::Target;
pub use write::{flash, Report};

/// Ctrl-C (or SIGTERM) arrived; the copy stopped between two chunks.
#[derive(Debug, thiserror::Error)]
#[error("interrupted while {phase}; run `edgeimg flash` again")]
pub struct Interrupted {
    pub phase: &'static str,
}
