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
    /// Print only `export EDGEIMG_ALPINE_MIRROR=... EDGEIMG_ALPINE_KEYS=...` on stdout, for
    /// `eval "$(tests/mirror.sh)"` (the report goes to stderr), as `edgeimg mirror --env` does.
    #[arg(long)]
    env: bool,
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
    for note in report.notes() {
        eprintln!("{note}");
    }
    let summary = report.summary(&opts.out, started.elapsed().as_secs_f64());
    if cli.env {
        eprintln!("{summary}");
        println!("{}", report.exports(&opts.out));
    } else {
        println!("{summary}");
    }
    Ok(())
}
