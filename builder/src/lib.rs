//! edgeimg: turn a TOML recipe into a minimal, bootable Alpine-based image serving an ONNX model.
//!
//! The pipeline, one module per stage, data flowing one way:
//! [`recipe`] (parse + validate) -> [`plan`] (one concrete description) -> [`packages`]
//! (signed Alpine repositories -> verified .apk files) -> [`rootfs`] (the in-memory tree)
//! -> [`writers`] (tar, cpio, file systems, disk images, manifest); [`disk_image`] assembles
//! the partitioned image a board boots from.

pub mod bench;
pub mod boot;
pub mod build;
pub mod checks;
pub mod device;
pub mod disk_image;
pub mod flash;
pub mod freshness;
pub mod imagetest;
pub mod kernel;
pub mod lock;
pub mod manifest;
pub mod model;
pub mod onnxruntime;
pub mod packages;
pub mod plan;
pub mod pypi;
pub mod recipe;
pub mod reference;
pub mod rootfs;
pub mod sbom;
pub mod vm;
pub mod writers;
