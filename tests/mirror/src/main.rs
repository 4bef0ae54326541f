//! `edgeimg-mirror --out DIR`: builds the offline, signed Alpine 3.23 mirror the tests use.

use anyhow::Result;
use clap::Parser;
use edgeimg_mirror::{build_mirror, cache, MirrorOptions};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Build a local, signed Alpine 3.23 mirror from real Alpine binaries")]
struct Cli {
    /// Mirror directory [default: ~/.cache/edgeimg/mirror]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Cache for wheels, Debian packages and extracted roots [default: ~/.cache/edgeimg]
    #[arg(long)]
    cache: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let started = Instant::now();
    let opts = MirrorOptions {
        out: match cli.out {
            Some(out) => out,
            None => cache::default_mirror_dir()?,
        },
        cache: match cli.cache {
            Some(dir) => dir,
            None => cache::cache_root()?,
        },
    };
    let report = build_mirror(&opts)?;
    for missing in &report.missing_files {
        eprintln!(
            "warning: listed in the installed db but missing from the root, skipped: {missing}"
        );
    }
    for restored in &report.restored_files {
        eprintln!("note: changed in the image, packaged content recovered (checksum matches Alpine's): {restored}");
    }
    for changed in &report.changed_files {
        eprintln!(
            "note: differs from Alpine's recorded checksum (changed in the image), kept: {changed}"
        );
    }
    let counts: Vec<String> = report
        .packages
        .iter()
        .map(|(arch, n)| format!("{arch}: {n} packages"))
        .collect();
    println!(
        "mirror {} at {} ({}; key {}) in {:.1}s",
        if report.up_to_date {
            "up to date"
        } else {
            "built"
        },
        opts.out.display(),
        counts.join(", "),
        report.public_key.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
