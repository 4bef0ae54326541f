//! Finding the QEMU system emulator.

use std::path::PathBuf;

use crate::board::Arch;
use crate::error::{Error, Result};

/// The `qemu-system-*` binary for `arch` on PATH, or an error saying how to install it.
pub fn find_qemu(arch: Arch) -> Result<PathBuf> {
    let binary = arch.qemu_binary();
    which::which(binary).map_err(|_| Error::QemuNotFound {
        binary: binary.to_string(),
    })
}
