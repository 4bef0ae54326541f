use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use edgeimg::recipe::{Board, LoadedRecipe};

/// The project's own recipes are the templates, so `new` always writes what the docs describe.
const PI_TEMPLATE: &str = include_str!("../../../recipes/pi.toml");
const X86_TEMPLATE: &str = include_str!("../../../recipes/qemu-x86_64.toml");
const ARM64_TEMPLATE: &str = include_str!("../../../recipes/qemu-aarch64.toml");

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Name of the device image (lowercase letters, digits, '-').
    name: String,
    /// Board: rpi4, rpi3, qemu-x86_64, qemu-aarch64.
    #[arg(long, value_parser = parse_board, default_value = "rpi4")]
    board: Board,
    /// Folder for the recipe.
    #[arg(long, default_value = "recipes")]
    dir: PathBuf,
    /// Overwrite an existing recipe.
    #[arg(long)]
    force: bool,
}

fn parse_board(s: &str) -> Result<Board, String> {
    Board::ALL
        .into_iter()
        .find(|b| b.name() == s)
        .ok_or_else(|| {
            let names: Vec<_> = Board::ALL.iter().map(|b| b.name()).collect();
            format!("unknown board {s:?}; accepted: {}", names.join(", "))
        })
}

pub fn run(args: NewArgs) -> Result<ExitCode> {
    let template = match args.board {
        Board::Rpi4 | Board::Rpi3 => PI_TEMPLATE,
        Board::QemuX86_64 => X86_TEMPLATE,
        Board::QemuAarch64 => ARM64_TEMPLATE,
    };
    let text = fill_template(template, &args.name, args.board);
    let path = args.dir.join(format!("{}.toml", args.name));
    // Validate before writing so a bad name never leaves a broken recipe behind.
    LoadedRecipe::parse(&path, text.clone()).map_err(|e| {
        anyhow::anyhow!("{e}").context(format!("cannot scaffold a recipe named {:?}", args.name))
    })?;
    if path.exists() && !args.force {
        bail!(
            "{} already exists; pick another name or pass --force to overwrite it",
            path.display()
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    println!(
        "wrote {}; next: edgeimg build {}",
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn fill_template(template: &str, name: &str, board: Board) -> String {
    template
        .lines()
        .map(|line| {
            if line.starts_with("name = ") {
                format!("name = {name:?}")
            } else if line.starts_with("board = ") {
                format!("board = {:?}", board.name())
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
