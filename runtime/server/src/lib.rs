//! edge-runtime: an Open Inference Protocol v2 server over `ort`, with ort-tract (pure Rust,
//! static) or the real ONNX Runtime (loaded at run time) as the engine.

pub mod config;
pub mod element;
pub mod engine;
pub mod error;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod tensor;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use edge_config::{Engine, RuntimeConfig};

use crate::engine::{Backend, Model};
use crate::http::AppState;

/// Initialises the configured engine and loads every model: everything that can fail before the
/// server opens its port.
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
    let state = AppState {
        models,
        metrics: metrics::Metrics::default(),
        engine: match config.engine {
            Engine::Tract => "tract",
            Engine::Onnxruntime => "onnxruntime",
        },
        bearer_token: config.bearer_token.clone(),
        max_body_bytes: config.max_body_bytes,
        max_concurrency: config.max_concurrency,
    };
    Ok((backend, state))
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small responses must not wait on Nagle + delayed ACK (tens of ms per request).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, http::router(Arc::new(state)))
        .with_graceful_shutdown(shutdown)
        .await
}
