//! The QEMU harness for edgeimg: boot an image on an emulated board, capture its serial
//! console, wait for the device's readiness line, forward its API port and shut it down.
//!
//! ```no_run
//! use std::time::Duration;
//! use edgeimg_qemu::{Board, BootSpec, Qemu, SpawnOptions};
//!
//! let mut spec = BootSpec::kernel(Board::QemuAarch64, "images/edge/Image");
//! spec.initrd = Some("images/edge/initramfs.cpio.zst".into());
//! spec.forward_port = Some(8000);
//! let mut vm = Qemu::spawn(&spec, &SpawnOptions::default())?;
//! let ready = vm.wait_for_ready(Duration::from_secs(60))?;
//! println!("{} ready in {:?}, API at {:?}", ready.line.model, ready.host_boot_to_ready, vm.api_addr());
//! vm.powerdown(Duration::from_secs(20))?;
//! # Ok::<(), edgeimg_qemu::Error>(())
//! ```
//!
//! The device prints one line when it is ready, `EDGEIMG-READY model=<name> listen=<addr>
//! ms_since_boot=<n>`; `EDGEIMG-ERROR ...`, a kernel panic or an initramfs the kernel could
//! not unpack whole fail the boot at once, and
//! `EDGEIMG-POWEROFF` announces a power-off. KVM is used only after a probe guest ran under
//! it (`EDGEIMG_ACCEL=tcg|kvm` overrides); otherwise TCG.

pub mod accel;
mod args;
mod binary;
pub mod board;
mod console;
pub mod error;
mod launch;
mod port;
mod qmp;
pub mod ready;
mod relay;
pub mod spec;
mod vm;

pub use accel::{Accel, AccelChoice, ACCEL_ENV};
pub use binary::{find_qemu, find_qemu_for};
pub use board::{Arch, Board, DiskInterface, MachineProfile, UefiFirmware};
pub use error::{Error, Result};
pub use launch::Qemu;
pub use ready::{OptimisedLine, Ready, ReadyLine};
pub use spec::{BootSpec, ConsoleMode, Disk, DiskFormat, Nic, SpawnOptions};
pub use vm::{RunningVm, ShutdownRequest};
