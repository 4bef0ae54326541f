use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use edgeimg::bench::{table, Bench, BenchOptions, Phase};
use edgeimg::plan::Overrides;

use super::BuildFlags;

const DEFAULT_RECIPES: [&str; 4] = [
    "recipes/pi.toml",
    "recipes/qemu-x86_64.toml",
    "recipes/qemu-aarch64.toml",
    "recipes/ab-aarch64.toml",
];

#[derive(Debug, Args)]
#[command(
    after_help = "Images are built into a scratch folder that is removed afterwards; --out DIR keeps them in DIR/<name>/.\n\nExamples:\n  edgeimg bench\n  edgeimg bench --only boot --only alpine --recipe recipes/qemu-x86_64.toml\n  edgeimg bench --only flash --json /tmp/flash.json\n  edgeimg bench --only system-update --recipe recipes/ab-aarch64.toml"
)]
pub struct BenchArgs {
    /// Recipe to measure; repeatable [default: recipes/pi.toml, recipes/qemu-x86_64.toml,
    /// recipes/qemu-aarch64.toml, recipes/ab-aarch64.toml].
    #[arg(long = "recipe", value_name = "FILE")]
    recipes: Vec<PathBuf>,
    /// Measure only this; repeatable [default: all].
    #[arg(long, value_enum, value_name = "WHAT")]
    only: Vec<Phase>,
    /// Write the figures as JSON here [default: images/bench.json beside the recipes folder].
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Seconds to wait for each guest's ready line or login prompt.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    #[command(flatten)]
    flags: BuildFlags,
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let recipes = if args.recipes.is_empty() {
        DEFAULT_RECIPES.iter().map(PathBuf::from).collect()
    } else {
        args.recipes
    };
    let bench = Bench::new(BenchOptions {
        recipes,
        only: args.only,
        overrides: Overrides {
            out_dir: args.flags.out,
            mirror: args.flags.mirror,
            trusted_keys: args.flags.trust_keys,
            source_date_epoch: args.flags.source_date_epoch,
            lock: None,
        },
        ready_timeout: Duration::from_secs(args.timeout),
    })?;
    let json = args.json.unwrap_or_else(|| bench.default_json_path());
    let report = bench.run()?;
    report.write_json(&json)?;
    print!("{}", table::render(&report));
    println!("\nJSON: {}", json.display());
    Ok(ExitCode::SUCCESS)
}
