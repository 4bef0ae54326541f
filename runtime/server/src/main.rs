//! The device's inference server: `edge-runtime [--config PATH]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use tokio::signal::unix::{signal, SignalKind};

// musl's malloc maps and faults in fresh pages for every request-sized buffer and unmaps them
// on free: 26 us to allocate, copy and free 110 KB here against glibc's 0.5 us, several times
// per request. dlmalloc keeps them (2 us); it is pure Rust, so the static build stays free of C.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

const USAGE: &str = "usage: edge-runtime [--config PATH]";

// One flag: a hand-rolled parser keeps clap out of the device binary.
fn config_path() -> anyhow::Result<PathBuf> {
    let mut path = PathBuf::from(edge_config::DEVICE_CONFIG_PATH);
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--config") => {
                path = args.next().context("--config needs a PATH")?.into();
            }
            Some("-h" | "--help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => bail!("unexpected argument {arg:?}; {USAGE}"),
        }
    }
    Ok(path)
}

async fn terminated() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch SIGTERM: {e}");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// The exit status of a failed start-up golden check: init counts it towards a rollback.
const GOLDEN_FAILED: u8 = 3;

fn run() -> anyhow::Result<ExitCode> {
    // The first line of the server's part of the boot timeline on the console.
    eprintln!(
        "edge-runtime: started at {} ms since boot",
        edge_runtime::ms_since_boot()
    );
    let device = edge_runtime::config::load_device(&config_path()?)?;
    let trial = device
        .system
        .as_ref()
        .filter(|s| edge_runtime::system::on_trial(s));
    let plan = edge_runtime::start_plan(device.runtime.start_plan, trial.is_some());
    let (backend, state) = edge_runtime::load_device(&device, plan)?;
    if let Some(system) = trial {
        match edge_runtime::system::golden_check(system, &state) {
            Some(Err(why)) => {
                eprintln!("edge-runtime: the start-up golden check failed, not serving: {why}");
                edge_runtime::system::record_start_failure(system, &why);
                return Ok(ExitCode::from(GOLDEN_FAILED));
            }
            Some(Ok(notes)) => eprintln!("edge-runtime: start-up golden check passed ({notes})"),
            None => {}
        }
    }
    let config = device.runtime;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Blocking threads run the engine; more than max_concurrency would only queue.
        .max_blocking_threads(config.max_concurrency)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let address = listener.local_addr()?;
        let names: Vec<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
        let limits = &state.limits;
        // One line on stdout that tests and the console can wait for.
        println!(
            "edge-runtime listening on {address} (engine {}, models {names:?}, {}, max_body {} bytes {}), at {} ms since boot",
            state.engine,
            if state.tls.is_some() { "https" } else { "http" },
            limits.max_body_bytes,
            match limits.max_body_origin {
                edge_runtime::limits::BodyLimitOrigin::Configured => "as configured",
                edge_runtime::limits::BodyLimitOrigin::Derived => "from the models' largest request",
                edge_runtime::limits::BodyLimitOrigin::DynamicShapes =>
                    "by default: a model has dimensions of any size or BYTES inputs, set max_body_bytes",
            },
            edge_runtime::ms_since_boot()
        );
        let state = std::sync::Arc::new(state);
        edge_runtime::optimise_in_background(backend, state.clone(), config.threads)
            .context("starting the thread that optimises the models")?;
        edge_runtime::serve(listener, state, terminated())
            .await
            .context("serving HTTP")
    })?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // tract raises and drops errors by the hundred while it optimises a model, and errors are
    // only ever printed here without a backtrace: with RUST_BACKTRACE=1 inherited (a host
    // server's shell) each one captured a backtrace anyway, and the static build's unwinder
    // made loading cls take 0.7-0.8 s instead of 0.13-0.18 s. Panics still honour it.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edge-runtime: {e:#}");
            ExitCode::FAILURE
        }
    }
}
