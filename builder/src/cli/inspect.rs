use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use edgeimg::outputs::manifest::{Manifest, MANIFEST_FILE};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image output folder, a file in it, or its manifest.json.
    path: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs) -> Result<ExitCode> {
    let manifest = Manifest::read(&find_manifest(&args.path)?)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "image    {} (board {}, {})",
        manifest.name, manifest.board, manifest.arch
    );
    println!("recipe   {}", manifest.recipe);
    println!(
        "alpine   {} {} [{}]",
        manifest.alpine.mirror,
        manifest.alpine.branch,
        manifest.alpine.repositories.join(", ")
    );
    println!(
        "rootfs   {} entries, {} bytes of files",
        manifest.rootfs.entries, manifest.rootfs.file_bytes
    );
    for model in &manifest.models {
        println!(
            "model    {} at {} (sha256 {})",
            model.name, model.path_in_image, model.sha256
        );
    }
    if let Some(engine) = &manifest.engine {
        let bytes: u64 = engine.libraries.iter().map(|l| l.size).sum();
        match engine.libraries.as_slice() {
            [] => println!("engine   {}", engine.name),
            libraries => println!(
                "engine   {} ({} libraries, {bytes} bytes, in {})",
                engine.name,
                libraries.len(),
                libraries[0]
                    .path_in_image
                    .rsplit_once('/')
                    .map_or("", |(dir, _)| dir)
            ),
        }
        for l in &engine.libraries {
            println!(
                "  {:<28} {:<18} {:>10} bytes  {}",
                l.path_in_image.rsplit('/').next().unwrap_or_default(),
                l.version,
                l.size,
                l.package
            );
        }
    }
    if !manifest.kernel_modules.is_empty() {
        let boot = manifest
            .kernel_modules
            .iter()
            .filter(|m| m.boot_initramfs)
            .count();
        println!(
            "modules ({}, {boot} of them also in the boot initramfs; loaded at boot by name or by a device's modalias):",
            manifest.kernel_modules.len()
        );
        for m in &manifest.kernel_modules {
            let mut reasons = m.reasons.iter();
            println!(
                "  {:<20} {:<9} {:<4} {}",
                m.name,
                m.loaded,
                if m.boot_initramfs { "boot" } else { "" },
                reasons.next().map_or("", String::as_str)
            );
            for reason in reasons {
                println!("  {:<20} {:<9} {:<4} {reason}", "", "", "");
            }
        }
    }
    println!("packages ({}):", manifest.packages.len());
    for p in &manifest.packages {
        println!(
            "  {:<28} {:<18} {:>10} bytes  {}",
            p.name, p.version, p.installed_size, p.license
        );
    }
    println!("outputs:");
    for o in &manifest.outputs {
        println!(
            "  {:<12} {:<32} {:>12} bytes  sha256 {}",
            o.kind, o.file, o.size, o.sha256
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn find_manifest(path: &Path) -> Result<PathBuf> {
    let candidates = [
        path.to_path_buf(),
        path.join(MANIFEST_FILE),
        path.parent()
            .map(|p| p.join(MANIFEST_FILE))
            .unwrap_or_default(),
    ];
    for c in candidates {
        if c.is_file() && c.file_name().is_some_and(|n| n == MANIFEST_FILE) {
            return Ok(c);
        }
    }
    bail!(
        "no {MANIFEST_FILE} found at or beside {}; give an image folder (images/<name>/) or a file that `edgeimg build` wrote",
        path.display()
    )
}
