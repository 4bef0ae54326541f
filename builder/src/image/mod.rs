//! What makes an Alpine rootfs tree an edgeimg image, and the disk a board boots from.
//! Each reads the plan and adds to the tree; [`disk`] then writes the finished tree as a
//! partitioned image with the writers.

pub mod boot_dir;
pub mod device;
pub mod disk;
pub mod kernel;
pub mod onnxruntime;
