use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use edgeimg::host::{for_build, preflight};
use edgeimg::image::device::device_binaries;
use edgeimg::pipeline::{install_packages, BuildOptions};
use edgeimg::plan::lockfile::{lock_path, Lockfile};
use edgeimg::rootfs::RootfsTree;

use super::build::plan_with_lock;
use super::BuildFlags;

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The recipe, e.g. recipes/pi.toml; the lock goes to recipes/pi.toml.lock.
    recipe: PathBuf,
    #[command(flatten)]
    flags: BuildFlags,
}

pub fn run(args: LockArgs) -> Result<ExitCode> {
    // Resolved afresh: an existing lock is what is being replaced.
    let plan = plan_with_lock(&args.recipe, &args.flags, None)?;
    let mut scratch = RootfsTree::new(plan.source_date_epoch);
    let opts = BuildOptions::from_env()?;
    preflight("lock", for_build(&plan, &opts.cache_dir))?;
    edgeimg::pipeline::fetch_models(&plan, &opts)?;
    let installed = install_packages(&plan, &opts, &mut scratch)?;
    let binaries = device_binaries(plan.arch, plan.runtime.engine, &opts.cache_dir)?;
    let lock = Lockfile::from_install(&plan, &installed, &binaries.runtime_libraries)?;
    let path = lock_path(&args.recipe);
    lock.write(&path)?;
    println!(
        "locked {} packages and {} engine libraries (kernel {}-{}) -> {}",
        lock.packages.len(),
        lock.engine_libraries.len(),
        lock.kernel.name,
        lock.kernel.version,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
