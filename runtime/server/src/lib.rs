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

use crate::engine::{Backend, Model};
use crate::http::AppState;
use crate::limits::Limits;
use crate::repository::Repository;

/// Initialises the configured engine, loads every model, reads the secrets and derives the
/// limits: everything that can fail before the server opens its port.
/// With model updates on, each model serves the version its store's `current` names.
pub fn load(config: &RuntimeConfig) -> anyhow::Result<(Arc<Backend>, AppState)> {
    let backend = Arc::new(engine::init_backend(
        config.engine,
        config.onnxruntime_library.as_deref().map(Path::new),
    )?);
    let mut models = HashMap::new();
    for model in &config.models {
        let loaded = match &config.model_updates {
            Some(updates) => {
                repository::boot_model(&backend, model, Path::new(&updates.store), config.threads)?
            }
            None => Model::load(&backend, model, config.threads)?,
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
pub fn load_device(config: &DeviceConfig) -> anyhow::Result<(Arc<Backend>, AppState)> {
    let (backend, mut state) = load(&config.runtime)?;
    state.system = system::SystemUpdates::new(config.system.as_ref())?;
    Ok((backend, state))
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    net::serve(listener, Arc::new(state), shutdown).await
}
