//! qcow2 copies of raw disk images, by `qemu-img convert` (qemu-utils): the qcow2 format has
//! no maintained pure-Rust writer, and qemu-img is already needed to run the images.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use super::atomic::AtomicFile;
use super::tool;

/// Convert the raw image `raw` to a qcow2 image at `out` (holes stay unallocated).
pub fn write_qcow2(raw: &Path, out: &Path) -> Result<()> {
    let qemu_img = tool::find(&tool::QEMU_IMG)?;
    let file = AtomicFile::create(out)?;
    tool::run(
        Command::new(qemu_img)
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(raw)
            .arg(file.path()),
    )?;
    file.commit()
}
