use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use edgeimg_qemu::{ConsoleMode, Qemu, SpawnOptions};

use edgeimg::host::{for_run, preflight};
use edgeimg::imagetest::qemu_boot::{boot_spec, qemu_board};
use edgeimg::pipeline::BuildOptions;

use super::build::plan_for;
use super::BuildFlags;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The recipe, e.g. recipes/qemu-aarch64.toml.
    recipe: PathBuf,
    #[command(flatten)]
    flags: BuildFlags,
    /// Build even if the last build in the output folder is up to date.
    #[arg(long)]
    rebuild: bool,
    /// Extra kernel command-line words (e.g. edgeimg.selftest=kill-server).
    #[arg(long, default_value = "")]
    append: String,
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let plan = plan_for(&args.recipe, &args.flags)?;
    let opts = BuildOptions::from_env()?;
    preflight("run", for_run(&plan, &opts.cache_dir))?;
    let built = super::build::build_or_reuse(&plan, &opts, args.rebuild)?;
    let machine = qemu_board(plan.board);
    // Without a terminal (CI, a script) the console is shown but QEMU gets no stdin.
    let console = if std::io::stdin().is_terminal() {
        ConsoleMode::Interactive
    } else {
        ConsoleMode::Tee
    };
    let mut api_port = None;
    loop {
        // Read again on each boot: after an A/B update the disk names the other slot.
        let spec = boot_spec(
            plan.board,
            machine,
            &plan.out_dir,
            &built.manifest,
            &args.append,
        )?;
        let mut vm = Qemu::spawn(
            &spec,
            &SpawnOptions {
                console,
                console_log: Some(plan.out_dir.join("console.log")),
                api_port,
                ..Default::default()
            },
        )?;
        match (vm.api_addr(), api_port) {
            (Some(addr), None) => eprintln!(
                "edgeimg: {} on {machine}, API forwarded to http://{addr}/v2 (Ctrl-a x quits QEMU)",
                plan.name
            ),
            (Some(addr), Some(_)) => eprintln!(
                "edgeimg: the guest rebooted; booting what its disk names, API still at http://{addr}/v2"
            ),
            (None, _) => eprintln!(
                "edgeimg: {} on {machine}, which has no network: console only (Ctrl-a x quits QEMU)",
                plan.name
            ),
        }
        api_port = vm.api_addr().map(|addr| addr.port());
        let _ = vm.wait_for_ready(Duration::from_secs(600));
        let status = vm.wait()?;
        if !vm.guest_restarted() {
            return Ok(if status.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
}
