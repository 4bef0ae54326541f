//! edgeimg: turn a TOML recipe into a minimal, bootable Alpine-based image serving an ONNX model.
//!
//! The pipeline, one module per stage, data flowing one way:
//! [`recipe`] (parse + validate) -> [`plan`] (one concrete description) -> [`packages`]
//! (signed Alpine repositories -> verified .apk files) -> [`rootfs`] (the in-memory tree)
//! -> [`writers`] (tar, cpio, file systems, disk images, manifest).

pub mod build;
pub mod kernel;
pub mod manifest;
pub mod model;
pub mod packages;
pub mod plan;
pub mod recipe;
pub mod rootfs;
pub mod writers;
pub mod device;
pub mod boot;
pub mod checks;
pub mod vm;
pub mod onnxruntime;
pub mod reference;
pub mod imagetest;
