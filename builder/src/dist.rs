//! edgeimg's distribution: one archive holding `edgeimg` and the device binaries of its version
//! for both arches and both engines, so an installed edgeimg builds images with no source tree
//! and no Rust toolchain. `cargo xtask dist` makes it. Inside, `share/edgeimg/<version>/` is
//! the folder an installed edgeimg finds beside itself ([`folder`](crate::image::device::binaries::folder)):
//!
//! ```text
//! edgeimg-<version>-<host arch>-linux/
//!   bin/edgeimg
//!   share/edgeimg/<version>/device-binaries.json   version, commit, sha256 of each binary
//!   share/edgeimg/<version>/<rust target>/edge-init, edge-runtime
//!   SHA256SUMS                                     every other file (`sha256sum -c`)
//! ```
//!
//! and beside the archive, `<archive>.sha256`. Unpacked into a prefix (`~/.local`,
//! `/usr/local`) with `--strip-components=1`, the binaries land where the installed edgeimg
//! looks first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use edge_config::Arch;
use flate2::write::GzEncoder;

use crate::image::device::folder::{BinaryKind, FolderIndex, VERSION};
use crate::image::device::source::SourceTree;
use crate::writers::atomic::AtomicFile;
use crate::writers::record::OutputRecord;

/// The checksum list inside the archive.
pub const SUMS_FILE: &str = "SHA256SUMS";

pub struct DistOptions {
    /// The edgeimg executable to ship (its `--version` must be this library's version).
    pub edgeimg: PathBuf,
    /// Where the archive and its `.sha256` go.
    pub out_dir: PathBuf,
    /// Where the device binaries are built (cargo reuses what is fresh in its target dir).
    pub tree: SourceTree,
}

#[derive(Debug)]
pub struct DistReport {
    pub archive: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// Each file in the archive (relative to its top folder) and its size.
    pub files: Vec<(String, u64)>,
}

/// `edgeimg-<version>-<host arch>-linux`, the archive's top folder and name.
pub fn dist_name() -> String {
    format!("edgeimg-{VERSION}-{}-linux", std::env::consts::ARCH)
}

/// Build the device binaries (a no-op for what is fresh) and pack everything.
pub fn pack(opts: &DistOptions) -> Result<DistReport> {
    check_version(&opts.edgeimg)?;
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create {}", opts.out_dir.display()))?;
    let name = dist_name();
    let staging = tempfile::Builder::new()
        .prefix(".dist-")
        .tempdir_in(&opts.out_dir)
        .with_context(|| format!("cannot stage in {}", opts.out_dir.display()))?;
    let top = staging.path().join(&name);
    let mut files = Vec::new();
    stage(&mut files, &top, &opts.edgeimg, "bin/edgeimg")?;

    let share = format!("share/edgeimg/{VERSION}");
    for arch in Arch::ALL {
        let built = opts
            .tree
            .build_static(arch, &[BinaryKind::Init, BinaryKind::StaticRuntime])?;
        let glibc = opts.tree.build_glibc_runtime(arch)?;
        for (from, kind) in [
            (&built[0], BinaryKind::Init),
            (&built[1], BinaryKind::StaticRuntime),
            (&glibc, BinaryKind::GlibcRuntime),
        ] {
            stage(
                &mut files,
                &top,
                from,
                &format!("{share}/{}", kind.relative_path(arch)),
            )?;
        }
    }
    FolderIndex::write(&top.join(&share), &opts.tree.commit())?;
    files.push(format!(
        "{share}/{}",
        crate::image::device::folder::INDEX_FILE
    ));
    files.sort();
    let sums = checksums(&top, &files)?;
    std::fs::write(top.join(SUMS_FILE), sums)?;
    files.push(SUMS_FILE.to_string());

    let archive = opts.out_dir.join(format!("{name}.tar.gz"));
    write_archive(&archive, &top, &name, &files)?;
    let record = OutputRecord::of_file("dist", &archive)?;
    std::fs::write(
        opts.out_dir.join(format!("{name}.tar.gz.sha256")),
        format!("{}  {name}.tar.gz\n", record.sha256),
    )?;
    let sizes = files
        .iter()
        .map(|f| Ok((f.clone(), std::fs::metadata(top.join(f))?.len())))
        .collect::<Result<_>>()?;
    Ok(DistReport {
        archive,
        sha256: record.sha256,
        size: record.size,
        files: sizes,
    })
}

/// The executable must be the edgeimg this library belongs to: the binaries are of its version.
fn check_version(edgeimg: &Path) -> Result<()> {
    let out = Command::new(edgeimg)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", edgeimg.display()))?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || said.trim() != format!("edgeimg {VERSION}") {
        bail!(
            "{} says {:?}, not \"edgeimg {VERSION}\": it is not the edgeimg these device binaries belong to",
            edgeimg.display(),
            said.trim()
        );
    }
    Ok(())
}

fn stage(files: &mut Vec<String>, top: &Path, from: &Path, to: &str) -> Result<()> {
    let dest = top.join(to);
    let dir = dest.parent().expect("a file in a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::copy(from, &dest)
        .with_context(|| format!("cannot copy {} to {}", from.display(), dest.display()))?;
    files.push(to.to_string());
    Ok(())
}

/// `sha256sum`'s format, so `sha256sum -c SHA256SUMS` checks an unpacked archive.
fn checksums(top: &Path, files: &[String]) -> Result<String> {
    let mut out = String::new();
    for file in files {
        let record = OutputRecord::of_file("file", &top.join(file))?;
        out.push_str(&format!("{}  {file}\n", record.sha256));
    }
    Ok(out)
}

/// A gzipped tar of `files` under `name/`, entries in order with fixed owners and times
/// (`HeaderMode::Deterministic`), written under a temporary name first.
fn write_archive(archive: &Path, top: &Path, name: &str, files: &[String]) -> Result<()> {
    let mut out = AtomicFile::create(archive)?;
    {
        let gz = GzEncoder::new(out.file(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        tar.follow_symlinks(false);
        for file in files {
            tar.append_path_with_name(top.join(file), format!("{name}/{file}"))
                .with_context(|| format!("cannot add {file} to {}", archive.display()))?;
        }
        tar.into_inner()?.finish()?.flush()?;
    }
    out.commit()
}
