//! Running the few host tools some writers need (mke2fs, qemu-img), with errors that say
//! which package to install.

use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

/// A program some writer runs, and the Debian package that installs it (`edgeimg doctor` and
/// every build's first check list the same ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostTool {
    pub command: &'static str,
    pub package: &'static str,
}

/// ext4 data partitions (`mke2fs -d`).
pub const MKE2FS: HostTool = HostTool {
    command: "mke2fs",
    package: "e2fsprogs",
};

/// qcow2 outputs (`qemu-img convert`).
pub const QEMU_IMG: HostTool = HostTool {
    command: "qemu-img",
    package: "qemu-utils",
};

/// Find `tool` on PATH or in the sbin directories a non-root PATH often lacks.
pub fn find(tool: &HostTool) -> Result<PathBuf> {
    locate(tool.command).with_context(|| {
        format!(
            "`{}` is not installed; install the `{}` package",
            tool.command, tool.package
        )
    })
}

/// `name` on PATH or in the sbin directories, if it is anywhere.
pub fn locate(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Run `cmd` to completion; a non-zero exit is an error carrying the tool's stderr.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}
