use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use bytesize::ByteSize;
use clap::Args;

use edgeimg::flash::{flash, BmapChoice, Interrupted, Source, SystemPaths, Target};
use edgeimg::host::{for_flash, preflight};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  edgeimg flash images/edge-pi/edge-pi.img /dev/sdb\n  edgeimg flash --yes images/edge-pi/edge-pi.img /dev/disk/by-id/usb-SanDisk_Ultra-0:0\n  edgeimg flash --file images/edge-pi/edge-pi.img /tmp/copy.img"
)]
pub struct FlashArgs {
    /// The disk image `edgeimg build` wrote (images/<name>/<name>.img).
    image: PathBuf,
    /// The card's whole-disk device (/dev/sdb, /dev/mmcblk0; `lsblk` lists them), or a file
    /// with --file.
    target: PathBuf,
    /// Block map to use [default: IMAGE.bmap, or IMAGE without its extension + .bmap].
    #[arg(long, value_name = "FILE", conflicts_with = "no_bmap")]
    bmap: Option<PathBuf>,
    /// Write every byte of the image, ignoring any bmap.
    #[arg(long)]
    no_bmap: bool,
    /// Do not ask for confirmation (for scripts).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Allow a disk that does not look removable (never the system disk or a mounted one).
    #[arg(long)]
    force: bool,
    /// The target may be a regular file: created if missing, replaced if present.
    #[arg(long)]
    file: bool,
}

/// Set by Ctrl-C or SIGTERM; the copy stops at the next chunk.
static CANCEL: AtomicBool = AtomicBool::new(false);

pub fn run(args: FlashArgs) -> Result<ExitCode> {
    preflight("flash", for_flash())?;
    let choice = match (&args.bmap, args.no_bmap) {
        (_, true) => BmapChoice::Off,
        (Some(p), false) => BmapChoice::File(p.clone()),
        (None, false) => BmapChoice::Auto,
    };
    let source = Source::open(&args.image, &choice)?;
    let target = Target::inspect(&args.target, args.file, &SystemPaths::default())?;
    target.check(&source, args.force)?;
    if !args.yes && !std::io::stdin().is_terminal() {
        bail!(
            "not flashing {}: edgeimg asks for confirmation on a terminal, and there is none here; pass --yes to flash without asking",
            target.path().display()
        );
    }
    if !source.bmap_not_found.is_empty() {
        let looked: Vec<String> = source
            .bmap_not_found
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "warning: no bmap found (looked for {}): writing all {} of the image; pass --bmap FILE to use one",
            looked.join(", "),
            ByteSize(source.size)
        );
    }
    if !args.yes {
        confirm(&source, &target)?;
    }
    ctrlc::set_handler(|| CANCEL.store(true, Ordering::Relaxed))
        .context("cannot install the Ctrl-C handler")?;
    let report = match flash(&source, &target, &CANCEL, std::io::stderr().is_terminal()) {
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(130));
        }
        r => r?,
    };
    let rate = report.bytes_written as f64 / report.write_time.as_secs_f64().max(1e-3);
    println!(
        "flashed {} to {}: wrote {} of {} in {:.1} s ({}/s), verified in {:.1} s",
        source.image.display(),
        target.path().display(),
        ByteSize(report.bytes_written),
        ByteSize(source.size),
        report.write_time.as_secs_f64(),
        ByteSize(rate as u64),
        report.verify_time.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn confirm(source: &Source, target: &Target) -> Result<()> {
    let mut err = std::io::stderr().lock();
    write!(
        err,
        "About to overwrite\n  {}with {}.\nEverything on it will be lost. Type yes to continue: ",
        target
            .describe()
            .replace('\n', "\n  ")
            .trim_end_matches(' '),
        source.summary()
    )?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not confirmed (answer was not `yes`); nothing was written");
    }
    Ok(())
}
