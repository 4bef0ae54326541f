use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use edgeimg::host::{apt_command, check, everything, for_test, Finding};
use edgeimg::image::device::Provider;
use edgeimg::packages::default_cache_dir;

use super::build::plan_for;
use super::BuildFlags;

#[derive(Debug, Args)]
#[command(
    after_help = "Exits non-zero when something a command needs is missing. Without a recipe it checks what every board, engine and command uses; with one, what `edgeimg test RECIPE` needs (which includes its build)."
)]
pub struct DoctorArgs {
    /// Check only what this recipe's build and test need.
    recipe: Option<PathBuf>,
    #[command(flatten)]
    flags: BuildFlags,
}

pub fn run(args: DoctorArgs) -> Result<ExitCode> {
    let cache_dir = default_cache_dir()?;
    let requirements = match &args.recipe {
        Some(recipe) => for_test(&plan_for(recipe, &args.flags)?, &cache_dir),
        None => everything(&cache_dir),
    };
    println!("edgeimg {} doctor", env!("CARGO_PKG_VERSION"));
    match Provider::select() {
        Ok(provider) => {
            let origin = provider.origin();
            println!(
                "device binaries: {} ({}, commit {})",
                origin.base.display(),
                origin.found_as,
                origin.source_commit
            );
        }
        Err(e) => println!("device binaries: none usable: {e:#}"),
    }
    let findings = check(requirements);
    print_findings(&findings);
    let missing: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.missing() && !f.requirement.optional)
        .collect();
    if missing.is_empty() {
        println!("\neverything needed is here");
        return Ok(ExitCode::SUCCESS);
    }
    println!("\n{} missing", missing.len());
    let needed: Vec<Finding> = missing.into_iter().cloned().collect();
    if let Some(apt) = apt_command(&needed) {
        println!("install the Debian packages with:\n  {apt}");
    }
    for finding in needed.iter() {
        if let edgeimg::host::Fix::Do(what) = &finding.requirement.fix {
            println!("{}: {what}", finding.requirement.what);
        }
    }
    Ok(ExitCode::FAILURE)
}

/// Grouped under their headings, in the order the headings first appear.
fn print_findings(findings: &[Finding]) {
    let mut groups: Vec<&str> = Vec::new();
    for finding in findings {
        if !groups.contains(&finding.requirement.group) {
            groups.push(finding.requirement.group);
        }
    }
    for group in groups {
        println!("\n{group}");
        for finding in findings.iter().filter(|f| f.requirement.group == group) {
            let r = &finding.requirement;
            let (status, detail) = match &finding.found {
                Ok(found) => ("ok", found.clone()),
                Err(why) if r.optional => ("absent", format!("{why} (optional; {})", r.fix)),
                Err(why) => ("MISSING", format!("{why}; fix: {}", r.fix)),
            };
            println!("  {status:<8} {} ({}): {detail}", r.what, r.purpose);
        }
    }
}
