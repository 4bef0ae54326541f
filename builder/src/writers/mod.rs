//! Writers turn the rootfs tree into outputs: cpio initramfs, squashfs, ext4 and FAT file
//! systems, MBR/GPT disk images, `.bmap` files and qcow2.
//!
//! Every writer is unprivileged (no root, loop devices or mounts), deterministic (times come
//! from the tree, entries are sorted, nothing of the host leaks in) and atomic: output goes to
//! a temporary name in the output directory and is renamed into place only when complete.

pub mod atomic;
pub mod bmap;
pub mod compression;
pub mod cpio;
pub mod disk;
pub mod ext4;
pub mod extents;
pub mod fat;
mod fat_fixups;
pub mod ids;
pub mod initramfs;
pub mod qcow2;
pub mod record;
pub mod squashfs;
pub mod tar;
pub mod tool;

#[cfg(test)]
mod tests;
