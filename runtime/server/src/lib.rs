//! edge-runtime: an Open Inference Protocol v2 server over `ort`, with ort-tract (pure Rust,
//! static) or the real ONNX Runtime (loaded at run time) as the engine.

pub mod body;
pub mod config;
pub mod element;
pub mod engine;
pub mod error;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod repository;
pub mod strings;
pub mod system;
pub mod tensor;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use edge_config::{DeviceConfig, RuntimeConfig};

use crate::engine::{Backend, Model, Plan};
use crate::http::AppState;
use crate::limits::Limits;
use crate::repository::Repository;

/// Initialises the configured engine, loads every model, reads the secrets and derives the
/// limits: everything that can fail before the server opens its port.
/// With model updates on, each model serves the version its store's `current` names. Each model
/// starts on `plan`.
pub fn load(config: &RuntimeConfig, plan: Plan) -> anyhow::Result<(Arc<Backend>, AppState)> {
    let backend = Arc::new(engine::init_backend(
        config.engine,
        config.onnxruntime_library.as_deref().map(Path::new),
    )?);
    let mut models = HashMap::new();
    for model in &config.models {
        let loaded = match &config.model_updates {
            Some(updates) => {
                let store = Path::new(&updates.store);
                repository::boot_model(&backend, model, store, config.threads, plan)?
            }
            None => Model::load_plan(&backend, model, config.threads, plan)?,
        };
        models.insert(model.name.clone(), ArcSwap::from_pointee(loaded));
    }
    let serving: Vec<Arc<Model>> = models.values().map(ArcSwap::load_full).collect();
    let inputs: Vec<&[tensor::TensorSpec]> = serving.iter().map(|m| m.inputs.as_slice()).collect();
    let limits = Limits::new(config, &inputs);
    let repository = config
        .model_updates
        .as_ref()
        .map(|updates| Repository::new(updates, backend.clone(), &config.models, config.threads))
        .transpose()?;
    let state = AppState {
        metrics: metrics::Metrics::default(),
        engine: config.engine.name(),
        bearer_token: config::bearer_token(config)?,
        engine_slots: tokio::sync::Semaphore::new(limits.max_concurrency),
        tls: config.tls.as_ref().map(net::tls::acceptor).transpose()?,
        limits,
        models,
        repository,
        system: None,
    };
    Ok((backend, state))
}

/// [`load`], plus the system update routes when `[system]` takes updates.
pub fn load_device(config: &DeviceConfig, plan: Plan) -> anyhow::Result<(Arc<Backend>, AppState)> {
    let (backend, mut state) = load(&config.runtime, plan)?;
    state.system = system::SystemUpdates::new(config.system.as_ref())?;
    Ok((backend, state))
}

/// The plan the models start serving on. Optimising is most of tract's start (cls: 1.6-1.9 s of
/// the server's 2.0 s under QEMU TCG) and about 40 % of an ONNX Runtime session (cls: 16-18 ms
/// natively, 8-11 ms without its optimisations), so both serve their quick plan at once and
/// [`optimise_in_background`] swaps the optimised one in, unless the config asks to start
/// optimised. A system on trial starts optimised, so its golden check runs the plan it will
/// serve.
pub fn start_plan(configured: Plan, on_trial: bool) -> Plan {
    if on_trial {
        Plan::Optimised
    } else {
        configured
    }
}

/// Builds the optimised plan of each model that serves a quick one, on its own thread, and
/// swaps it in; a model update that replaced the quick plan meanwhile is left serving. A model
/// whose optimised plan fails to build keeps its quick plan, and says why on stderr.
pub fn optimise_in_background(
    backend: Arc<Backend>,
    state: Arc<AppState>,
    threads: usize,
) -> std::io::Result<()> {
    let quick: Vec<(String, Arc<Model>)> = state
        .models
        .iter()
        .map(|(name, slot)| (name.clone(), slot.load_full()))
        .filter(|(_, model)| model.plan == Plan::Quick)
        .collect();
    if quick.is_empty() {
        return Ok(());
    }
    let optimise = move || {
        lower_this_threads_priority();
        for (name, model) in quick {
            let slot = &state.models[&name];
            // A model update that came first serves optimised already; its quick plan's file
            // may be gone too.
            if !serves(slot, &model) {
                continue;
            }
            let started = std::time::Instant::now();
            let optimised = match model.optimised(&backend, threads) {
                Ok(optimised) => Arc::new(optimised),
                Err(e) => {
                    if serves(slot, &model) {
                        eprintln!(
                            "edge-runtime: model '{name}' keeps serving its quick plan, which runs slower: its optimised plan failed: {e:#}"
                        );
                    }
                    continue;
                }
            };
            if replace_if_serving(slot, &model, optimised) {
                eprintln!(
                    "{} model={name} ms={} ms_since_boot={}",
                    edge_config::OPTIMISED_MARKER,
                    started.elapsed().as_millis(),
                    ms_since_boot()
                );
            }
        }
    };
    std::thread::Builder::new()
        .name("optimise".into())
        .spawn(optimise)
        .map(drop)
}

/// Nice 10 for the calling thread alone (Linux keeps the nice value per thread): on a device
/// with one CPU, requests and init's readiness probe go first (under TCG the probe was answered
/// 110 ms after the bind at nice 0, 70 ms at nice 19), while a device busy from boot on still
/// gets about a tenth of the CPU to optimise.
fn lower_this_threads_priority() {
    // SAFETY: setpriority takes plain integers; who = 0 is the calling thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
}

/// Whether `model` is what `slot` serves now.
fn serves<T>(slot: &ArcSwap<T>, model: &Arc<T>) -> bool {
    Arc::ptr_eq(&slot.load(), model)
}

/// Puts `next` in `slot` if `current` still serves there; false if something else (a model
/// update) replaced it meanwhile, which then stays.
fn replace_if_serving<T>(slot: &ArcSwap<T>, current: &Arc<T>, next: Arc<T>) -> bool {
    Arc::ptr_eq(&slot.compare_and_swap(current, next), current)
}

/// Milliseconds since the kernel started (CLOCK_BOOTTIME), as init's EDGEIMG lines count them.
pub fn ms_since_boot() -> i64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut time) };
    time.tv_sec * 1000 + time.tv_nsec / 1_000_000
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    net::serve(listener, state, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optimised_plan_never_replaces_a_model_update_that_came_first() {
        let quick = Arc::new("quick plan of version 1");
        let slot = ArcSwap::new(quick.clone());
        assert!(replace_if_serving(
            &slot,
            &quick,
            Arc::new("optimised version 1")
        ));
        assert_eq!(**slot.load(), "optimised version 1");

        let quick = Arc::new("quick plan of version 1");
        let slot = ArcSwap::new(quick.clone());
        assert!(serves(&slot, &quick));
        slot.store(Arc::new("version 2, pushed while version 1 was optimised"));
        // Nor is the quick plan said to serve on when its optimised plan fails.
        assert!(!serves(&slot, &quick));
        assert!(!replace_if_serving(
            &slot,
            &quick,
            Arc::new("optimised version 1")
        ));
        assert_eq!(
            **slot.load(),
            "version 2, pushed while version 1 was optimised"
        );
    }
}
