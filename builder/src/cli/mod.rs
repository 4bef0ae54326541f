//! Subcommands, ripgrep/cargo style: one file each, a thin layer over the library.

mod bench;
mod build;
mod doctor;
mod flash;
mod inspect;
mod lock;
mod mirror;
mod new;
mod run;
mod test;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "edgeimg",
    version,
    about = "Turn a TOML recipe into a minimal, bootable Alpine-based image that serves an ONNX model",
    after_help = "Typical use:\n  edgeimg doctor\n  edgeimg new mydevice --board rpi4\n  edgeimg build recipes/mydevice.toml\n  edgeimg test recipes/qemu-aarch64.toml\n  edgeimg flash images/mydevice/mydevice.img /dev/sdX"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the images a recipe describes (into images/<name>/ unless --out).
    Build(build::BuildArgs),
    /// Build if stale, then boot the image in QEMU with its console on this terminal.
    Run(run::RunArgs),
    /// Build if stale, boot headless in QEMU, run the recipe's [[test]] checks.
    Test(test::TestArgs),
    /// Write an image to an SD card or disk, guarded, sparse (bmap) and verified.
    Flash(flash::FlashArgs),
    /// Resolve the recipe's packages and write RECIPE.lock, which later builds install exactly.
    Lock(lock::LockArgs),
    /// Show what an image contains: packages, files, model, outputs and sizes.
    Inspect(inspect::InspectArgs),
    /// Scaffold a new recipe (recipes/<name>.toml) for a board, with your model or an example.
    New(new::NewArgs),
    /// Check this machine for what builds, tests, runs and flashes need, and say what to install.
    Doctor(doctor::DoctorArgs),
    /// Build the offline Alpine mirror (for machines that cannot reach Alpine's).
    Mirror(mirror::MirrorArgs),
    /// Measure build time, image size, boot-to-ready (also against stock Alpine), inference per
    /// engine (host, guests, Python), flashing and model updates.
    Bench(bench::BenchArgs),
    /// Upload a new model to a running device: checked there, then swapped in, or refused.
    Update(update::UpdateArgs),
    /// Make an ed25519 key pair for signing models (BASE.key, BASE.pub).
    Keygen(update::KeygenArgs),
    /// Sign a model with a key from `edgeimg keygen` (writes MODEL.sig).
    SignModel(update::SignModelArgs),
}

/// Options shared by every command that builds.
#[derive(Debug, Args, Clone)]
pub struct BuildFlags {
    /// Output folder (default: images/<name>/ beside the recipes folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Alpine mirror to use instead of the recipe's: an https URL or a local folder.
    #[arg(long, value_name = "URL|DIR", env = "EDGEIMG_ALPINE_MIRROR")]
    pub mirror: Option<String>,
    /// Trust this public key (*.rsa.pub) for the mirror's signatures; repeatable.
    #[arg(
        long = "trust-key",
        value_name = "FILE",
        env = "EDGEIMG_ALPINE_KEYS",
        value_delimiter = ':'
    )]
    pub trust_keys: Vec<PathBuf>,
    /// Timestamp for every file in the image (reproducible builds; default: the lock's).
    #[arg(long, value_name = "SECONDS", env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<u64>,
    /// Refuse to build without the recipe's lock file (RECIPE.lock, from `edgeimg lock`).
    #[arg(long)]
    pub locked: bool,
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Lock(args) => lock::run(args),
        Command::New(args) => new::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Mirror(args) => mirror::run(args),
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::run(args),
        Command::Flash(args) => flash::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Update(args) => update::run_update(args),
        Command::Keygen(args) => update::run_keygen(args),
        Command::SignModel(args) => update::run_sign_model(args),
    }
}
