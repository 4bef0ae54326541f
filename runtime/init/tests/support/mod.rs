//! Shared pieces of edge-init's boot tests.
#![allow(dead_code)]

pub mod alpine;
pub mod alpine_root;
pub mod build;
pub mod disk;
pub mod initramfs;
pub mod qemu;
