//! The `edgeimg` command line. Each subcommand lives in `cli/`; the pipeline is the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    show_harness_notes();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The QEMU harness says through `tracing` which accelerator it picked and why (a KVM that hangs
/// Linux falls back to TCG); print those notes, bare, on stderr. `EDGEIMG_LOG=debug` shows more.
fn show_harness_notes() {
    let level = match std::env::var("EDGEIMG_LOG").as_deref() {
        Ok("debug") => tracing_subscriber::filter::LevelFilter::DEBUG,
        Ok("warn") => tracing_subscriber::filter::LevelFilter::WARN,
        Ok("off") => tracing_subscriber::filter::LevelFilter::OFF,
        _ => tracing_subscriber::filter::LevelFilter::INFO,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .without_time()
        .with_target(false)
        .with_level(false)
        .init();
}
