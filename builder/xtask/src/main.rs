//! `cargo xtask dist`: the distribution archive of edgeimg (see `edgeimg::dist`): the release
//! build of edgeimg plus the device binaries of its version for both arches and engines,
//! built with cargo in this workspace (a no-op for whatever is already fresh in its target
//! folder).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use edgeimg::dist::{pack, DistOptions};
use edgeimg::image::device::source::SourceTree;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "The edgeimg project's own tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Pack edgeimg and its device binaries into edgeimg-VERSION-ARCH-linux.tar.gz.
    Dist {
        /// Where the archive and its .sha256 go [default: TARGET_DIR/dist].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Ship this edgeimg executable instead of building the release one.
        #[arg(long, value_name = "FILE")]
        edgeimg: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    let Task::Dist { out, edgeimg } = Cli::parse().task;
    let tree = SourceTree::of_this_build().context("xtask runs in the edgeimg workspace")?;
    let edgeimg = match edgeimg {
        Some(path) => path,
        None => release_edgeimg(&tree)?,
    };
    let out_dir = out.unwrap_or_else(|| tree.target_dir().join("dist"));
    let report = pack(&DistOptions {
        edgeimg,
        out_dir,
        tree,
    })?;
    println!(
        "{} ({:.1} MiB, sha256 {})",
        report.archive.display(),
        report.size as f64 / (1024.0 * 1024.0),
        report.sha256
    );
    for (file, size) in &report.files {
        println!("  {size:>10}  {file}");
    }
    println!(
        "install: tar -xzf {} -C ~/.local --strip-components=1  (or -C /usr/local)",
        report.archive.display()
    );
    Ok(())
}

fn release_edgeimg(tree: &SourceTree) -> Result<PathBuf> {
    eprintln!("xtask: cargo build --release -p edgeimg");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&tree.root)
        .args(["build", "--release", "-p", "edgeimg", "--bin", "edgeimg"])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release -p edgeimg failed");
    }
    Ok(tree.target_dir().join("release/edgeimg"))
}
