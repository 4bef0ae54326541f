//! Build time with a cold and a warm package cache, and what the build wrote.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::progress::Steps;
use super::secs;
use crate::outputs::manifest::Manifest;
use crate::packages::Progress;
use crate::pipeline::{build, BuildOptions};
use crate::plan::Plan;

pub const MEASURES: &str = "wall seconds of the whole `edgeimg build` pipeline (index, packages, \
    kernel, rootfs, writers, manifest). cold: a fresh, empty cache, so packages are fetched (the \
    mirror itself may be local) and an initramfs' large files compressed at zstd 19; warm: the \
    same build again with that cache. The device binaries were built \
    beforehand and are not part of either figure. Sizes: each output file as written; bmap \
    mapped: the bytes of the disk image that hold data (what `edgeimg flash` writes).";

#[derive(Debug, Clone, Serialize)]
pub struct BuildFigures {
    pub recipe: String,
    pub board: String,
    pub arch: String,
    pub cold_s: f64,
    pub warm_s: f64,
    pub packages: usize,
    pub outputs: Vec<OutputSize>,
    /// The disk image's size and how much of it the bmap maps.
    pub disk_bytes: Option<u64>,
    pub disk_mapped_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputSize {
    pub kind: String,
    pub file: String,
    pub bytes: u64,
}

/// Build `plan` twice with one new package cache under `caches`; returns the figures and the
/// second build's manifest (its files are the ones in `plan.out_dir`).
pub fn measure(plan: &Plan, caches: &Path, steps: &mut Steps) -> Result<(BuildFigures, Manifest)> {
    let cache_dir = caches.join(&plan.name);
    if cache_dir.exists() {
        std::fs::remove_dir_all(&cache_dir)
            .with_context(|| format!("cannot empty {}", cache_dir.display()))?;
    }
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let opts = BuildOptions {
        cache_dir,
        // The benchmark's own spinner says what runs; download bars would fight with it.
        progress: Progress::hidden(),
    };
    steps.step(&format!("build {} (cold package cache)", plan.name));
    let started = Instant::now();
    build(plan, &opts).context("the cold build failed")?;
    let cold = started.elapsed();
    steps.step(&format!("build {} (warm package cache)", plan.name));
    let started = Instant::now();
    let warm_report = build(plan, &opts).context("the warm build failed")?;
    let warm = started.elapsed();
    let manifest = warm_report.manifest;
    let figures = BuildFigures {
        recipe: plan.name.clone(),
        board: plan.board.name().to_string(),
        arch: plan.arch.alpine().to_string(),
        cold_s: secs(cold),
        warm_s: secs(warm),
        packages: manifest.packages.len(),
        outputs: manifest
            .outputs
            .iter()
            .map(|o| OutputSize {
                kind: o.kind.clone(),
                file: o.file.clone(),
                bytes: o.size,
            })
            .collect(),
        disk_bytes: manifest.disk.as_ref().map(|d| d.size),
        disk_mapped_bytes: manifest.disk.as_ref().map(|d| d.mapped_bytes),
    };
    Ok((figures, manifest))
}
