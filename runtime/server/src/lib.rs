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
pub mod tensor;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use edge_config::{Engine, RuntimeConfig};

use crate::engine::{Backend, Model};
use crate::http::AppState;
use crate::limits::Limits;

/// Initialises the configured engine, loads every model, reads the secrets and derives the
/// limits: everything that can fail before the server opens its port.
pub fn load(config: &RuntimeConfig) -> anyhow::Result<(Backend, AppState)> {
    let backend = engine::init_backend(
        config.engine,
        config.onnxruntime_library.as_deref().map(Path::new),
    )?;
    let mut models = HashMap::new();
    for model in &config.models {
        models.insert(
            model.name.clone(),
            Arc::new(Model::load(&backend, model, config.threads)?),
        );
    }
    let inputs: Vec<&[tensor::TensorSpec]> = models.values().map(|m| m.inputs.as_slice()).collect();
    let limits = Limits::new(config, &inputs);
    let state = AppState {
        metrics: metrics::Metrics::default(),
        engine: match config.engine {
            Engine::Tract => "tract",
            Engine::Onnxruntime => "onnxruntime",
        },
        bearer_token: config::bearer_token(config)?,
        engine_slots: tokio::sync::Semaphore::new(limits.max_concurrency),
        tls: config.tls.as_ref().map(net::tls::acceptor).transpose()?,
        limits,
        models,
    };
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
