//! `edgeimg flash` (the library's flash, as the command runs it with `--file --yes`) against
//! `dd bs=4M conv=fsync`, and `bmaptool copy` when it is installed, each writing the image to
//! a file in one scratch folder (one file system).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::stats::median;
use super::{file_name, round3, secs};
use crate::flash::{flash, BmapChoice, Report, Source, SystemPaths, Target};

pub const MEASURES: &str = "wall seconds to write the disk image to a new file in a scratch \
    folder on one file system; 5 rounds, each running the tools one after the other, medians \
    shown. edgeimg: `edgeimg flash --file --yes` (bmap check, write of the mapped ranges, \
    fsync, read-back verify; write s and verify s are its parts); dd: `dd bs=4M conv=fsync` \
    (every byte, no verify); bmaptool: `bmaptool copy` when installed. ratio: median over the \
    rounds of edgeimg / dd.";

/// Sub-second runs on a shared host: one sample says little.
const ROUNDS: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct FlashFigures {
    pub image: String,
    pub image_bytes: u64,
    pub mapped_bytes: u64,
    /// Mapped bytes / image bytes.
    pub mapped_share: f64,
    pub rounds: usize,
    /// Medians over the rounds.
    pub edgeimg_s: f64,
    pub edgeimg_write_s: f64,
    pub edgeimg_verify_s: f64,
    pub dd_s: f64,
    pub bmaptool_s: Option<f64>,
    pub edgeimg_over_dd: f64,
    pub samples: FlashSamples,
}

/// Every round's seconds, in order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlashSamples {
    pub edgeimg_s: Vec<f64>,
    pub dd_s: Vec<f64>,
    pub bmaptool_s: Vec<f64>,
}

pub fn measure(image: &Path, scratch: &Path) -> Result<FlashFigures> {
    let source = Source::open(image, &BmapChoice::Auto)?;
    let mut samples = FlashSamples::default();
    let (mut writes, mut verifies, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let edgeimg = edgeimg_flash(image, &scratch.join("edgeimg.img"))?;
        let dd = timed(
            Command::new("dd")
                .arg(format!("if={}", image.display()))
                .arg(format!("of={}", scratch.join("dd.img").display()))
                .args(["bs=4M", "conv=fsync", "status=none"]),
        )?
        .context("dd is not installed (it is part of coreutils)")?;
        if let Some((bmap, _)) = &source.bmap {
            let mut copy = Command::new("bmaptool");
            copy.args(["copy", "--bmap"])
                .arg(bmap)
                .arg(image)
                .arg(scratch.join("bmaptool.img"));
            if let Some(took) = timed(&mut copy)? {
                samples.bmaptool_s.push(secs(took));
            }
        }
        samples.edgeimg_s.push(secs(edgeimg.0));
        writes.push(edgeimg.1.write_time.as_secs_f64());
        verifies.push(edgeimg.1.verify_time.as_secs_f64());
        samples.dd_s.push(secs(dd));
        ratios.push(edgeimg.0.as_secs_f64() / dd.as_secs_f64().max(1e-9));
        // Each round writes new files, as the first did.
        for name in ["edgeimg.img", "dd.img", "bmaptool.img"] {
            let _ = std::fs::remove_file(scratch.join(name));
        }
    }
    let mapped = source.mapped_bytes();
    Ok(FlashFigures {
        image: file_name(image),
        image_bytes: source.size,
        mapped_bytes: mapped,
        mapped_share: ratio(mapped as f64, source.size as f64),
        rounds: ROUNDS,
        edgeimg_s: round3(median(&samples.edgeimg_s)),
        edgeimg_write_s: round3(median(&writes)),
        edgeimg_verify_s: round3(median(&verifies)),
        dd_s: round3(median(&samples.dd_s)),
        bmaptool_s: (!samples.bmaptool_s.is_empty()).then(|| round3(median(&samples.bmaptool_s))),
        edgeimg_over_dd: round3(median(&ratios)),
        samples,
    })
}

/// What `edgeimg flash --file --yes IMAGE TARGET` does, timed from opening the image.
fn edgeimg_flash(image: &Path, target: &Path) -> Result<(Duration, Report)> {
    let started = Instant::now();
    let source = Source::open(image, &BmapChoice::Auto)?;
    let target = Target::inspect(target, true, &SystemPaths::default())?;
    target.check(&source, false)?;
    let report = flash(&source, &target, &AtomicBool::new(false), false)?;
    Ok((started.elapsed(), report))
}

/// `a / b`, rounded to three decimals; 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        round3(a / b)
    } else {
        0.0
    }
}

/// Wall time of `cmd`; `None` when the program is not installed.
fn timed(cmd: &mut Command) -> Result<Option<Duration>> {
    let started = Instant::now();
    let out = match cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        r => r.with_context(|| format!("cannot run {:?}", cmd.get_program()))?,
    };
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(Some(took))
}
