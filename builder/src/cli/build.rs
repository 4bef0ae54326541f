use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use edgeimg::host::{for_build, preflight};
use edgeimg::pipeline::{build, build_if_stale, BuildOptions, BuildReport};
use edgeimg::plan::lockfile::{lock_path, Lockfile};
use edgeimg::plan::{LockedBuild, Overrides, Plan};
use edgeimg::recipe::LoadedRecipe;

use super::BuildFlags;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The recipe, e.g. recipes/pi.toml.
    recipe: PathBuf,
    #[command(flatten)]
    flags: BuildFlags,
}

pub fn run(args: BuildArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let plan = plan_for(&args.recipe, &args.flags)?;
    let opts = BuildOptions::from_env()?;
    preflight("build", for_build(&plan, &opts.cache_dir))?;
    let report = build(&plan, &opts)?;
    for warning in &report.manifest.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "built {} ({} packages) in {:.1}s -> {}",
        plan.name,
        report.manifest.packages.len(),
        started.elapsed().as_secs_f64(),
        report.out_dir.display()
    );
    for out in &report.manifest.outputs {
        println!(
            "  {:<28} {:>12} bytes  sha256 {}",
            out.file,
            out.size,
            &out.sha256[..16]
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Recipe + flags -> plan: the one place the command line meets the pipeline. The recipe's
/// lock file (`RECIPE.lock`) pins the build when it exists; `--locked` requires one.
pub fn plan_for(recipe: &std::path::Path, flags: &BuildFlags) -> Result<Plan> {
    let lock_file = lock_path(recipe);
    let lock = if lock_file.is_file() {
        Some(LockedBuild {
            lock: Lockfile::read(&lock_file)?,
            path: lock_file,
        })
    } else if flags.locked {
        anyhow::bail!(
            "--locked, but {} does not exist; run `edgeimg lock {}` first",
            lock_file.display(),
            recipe.display()
        );
    } else {
        None
    };
    plan_with_lock(recipe, flags, lock)
}

/// The plan with the given lock (or none: what `edgeimg lock` resolves afresh).
pub fn plan_with_lock(
    recipe: &std::path::Path,
    flags: &BuildFlags,
    lock: Option<LockedBuild>,
) -> Result<Plan> {
    let loaded = LoadedRecipe::load(recipe)?;
    let overrides = Overrides {
        out_dir: flags.out.clone(),
        mirror: flags.mirror.clone(),
        trusted_keys: flags.trust_keys.clone(),
        source_date_epoch: flags.source_date_epoch,
        lock,
    };
    Ok(Plan::new(&loaded, &overrides)?)
}

/// For `run` and `test`: the last build when it is up to date (unless `rebuild`), else a build.
pub fn build_or_reuse(plan: &Plan, opts: &BuildOptions, rebuild: bool) -> Result<BuildReport> {
    if rebuild {
        return build(plan, opts);
    }
    let (report, built) = build_if_stale(plan, opts)?;
    if !built {
        eprintln!(
            "edgeimg: {} is up to date in {} (--rebuild to build anyway)",
            plan.name,
            report.out_dir.display()
        );
    }
    Ok(report)
}
