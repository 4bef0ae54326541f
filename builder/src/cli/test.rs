use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use edgeimg::host::{for_test, preflight};
use edgeimg::imagetest::{test_image, write_junit, TestOptions, TestReport};
use edgeimg::pipeline::BuildOptions;

use super::build::plan_for;
use super::BuildFlags;

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The recipe, e.g. recipes/qemu-aarch64.toml.
    recipe: PathBuf,
    #[command(flatten)]
    flags: BuildFlags,
    /// Build even if the last build in the output folder is up to date.
    #[arg(long)]
    rebuild: bool,
    /// Seconds to wait for the device's ready line.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    /// Also write the results as JUnit XML.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

pub fn run(args: TestArgs) -> Result<ExitCode> {
    let plan = plan_for(&args.recipe, &args.flags)?;
    let opts = BuildOptions::from_env()?;
    preflight("test", for_test(&plan, &opts.cache_dir))?;
    let built = super::build::build_or_reuse(&plan, &opts, args.rebuild)?;
    let reports = test_image(
        &plan,
        &built.manifest,
        &TestOptions {
            ready_timeout: Duration::from_secs(args.timeout),
            cache_dir: opts.cache_dir.clone(),
        },
    )?;
    for report in &reports {
        print_report(&plan.name, report);
    }
    if let Some(path) = &args.junit {
        write_junit(&reports, &plan.name, path)?;
    }
    let cases = reports.iter().flat_map(|r| &r.cases);
    let passed = cases.clone().filter(|c| c.passed).count();
    let failed = cases.count() - passed;
    if reports.iter().all(TestReport::passed) {
        println!("{}: {passed} passed, 0 failed", plan.name);
        return Ok(ExitCode::SUCCESS);
    }
    for report in reports.iter().filter(|r| !r.passed()) {
        if let Some(failure) = &report.failure {
            eprintln!("on {}: {failure}", report.machine);
        }
    }
    let logs: Vec<String> = reports
        .iter()
        .map(|r| r.console_log.display().to_string())
        .collect();
    eprintln!(
        "{}: {passed} passed, {failed} failed (console logs: {})",
        plan.name,
        logs.join(", ")
    );
    Ok(ExitCode::FAILURE)
}

/// One machine's boot: its figures, each check, and why checks ran elsewhere.
fn print_report(name: &str, report: &TestReport) {
    println!(
        "{name} on {}: ready in {:.2}s (guest: {} ms since kernel start, {})",
        report.machine,
        report.host_boot_to_ready.as_secs_f64(),
        report.guest_ms_since_boot,
        report.accel
    );
    if let Some(elsewhere) = &report.checks_elsewhere {
        println!("  --   {elsewhere}");
    }
    for case in &report.cases {
        println!(
            "  {} {}: {}",
            if case.passed { "ok  " } else { "FAIL" },
            case.name,
            case.detail
        );
    }
    if let Some(took) = report.poweroff {
        println!("  powered off in {:.2}s", took.as_secs_f64());
    }
}
