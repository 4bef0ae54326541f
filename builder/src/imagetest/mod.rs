//! `edgeimg test`: boot a built image in QEMU and check it over its API. [`runner`] drives one
//! test run, [`checks`] are the recipe's `[[test]]` checks, [`host_server`] is the reference
//! answer from this machine's ONNX Runtime, and [`qemu_boot`] turns a built image into a QEMU
//! boot (also used by `edgeimg run` and the benchmark).

pub mod checks;
pub mod emulated_dtb;
mod files;
pub mod host_server;
pub mod qemu_boot;
mod reboot;
pub mod runner;
pub mod system_update;

pub use runner::{test_image, write_junit, TestOptions, TestReport};
