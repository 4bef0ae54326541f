//! The rootfs tree: the one in-memory picture of the image's file system.
//!
//! Every stage adds to it (packages, kernel modules, our binaries, the model, generated config)
//! and every writer reads from it. Nothing here touches the host file system, so the build needs
//! no root, no chown, no mknod and never runs a target binary: unprivileged and cross-arch.

mod path;
mod tree;

pub use path::{RootPath, RootPathError};
pub use tree::{FileData, Meta, Node, NodeKind, RootfsTree, TreeError};
