//! The Open Inference Protocol v2 REST routes, `/metrics` and bearer auth. An inference body is
//! decoded as it arrives, within the body limits, and only then waits for an engine slot.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::body::{BodyReader, ReadError};
use crate::engine::Model;
use crate::error::ApiError;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::protocol::{
    decode_stream, encode_response, BodySize, DecodeError, HEADER_CONTENT_LENGTH,
};
use crate::repository::{self, Repository};

/// `server-timing: infer;dur=<ms>` on every inference response.
pub const HEADER_SERVER_TIMING: &str = "server-timing";

/// Everything the handlers share.
pub struct AppState {
    /// The serving version of each model: swapped whole by a model update, while requests
    /// that started keep the `Arc` they took.
    pub models: HashMap<String, ArcSwap<Model>>,
    pub metrics: Metrics,
    pub engine: &'static str,
    pub bearer_token: Option<String>,
    pub limits: Limits,
    /// `max_concurrency` permits: a request takes one to run the engine.
    pub engine_slots: tokio::sync::Semaphore,
    /// Set when the API is served over TLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The model repository API, when the recipe enables model updates.
    pub repository: Option<Repository>,
    /// The system update routes, when `[system]` takes updates.
    pub system: Option<crate::system::SystemUpdates>,
}

/// `{name}` and, in the `/versions/{version}/` forms, `{version}`.
#[derive(Deserialize)]
struct ModelPath {
    name: String,
    version: Option<String>,
}

pub fn router(state: Arc<AppState>) -> Router {
    let model_routes = |prefix: &str| {
        Router::new()
            .route(prefix, get(model_metadata))
            .route(&format!("{prefix}/ready"), get(model_ready))
    };
    let infer_routes = Router::new()
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer));
    let mut protected = Router::new()
        .route("/v2", get(server_metadata))
        .route("/metrics", get(metrics))
        .merge(model_routes("/v2/models/{name}"))
        .merge(model_routes("/v2/models/{name}/versions/{version}"))
        .merge(infer_routes)
        .route("/v2/repository/index", post(repository::index))
        .route("/v2/repository/models/{name}/load", post(repository::load))
        .route(
            "/v2/repository/models/{name}/unload",
            post(repository::unload),
        );
    if state.system.is_some() {
        protected = protected
            .route("/v2/edgeimg/system", get(crate::system::status))
            .route("/v2/edgeimg/system/update", post(crate::system::update));
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(
        state.clone(),
        require_bearer,
    ));
    Router::new()
        .route("/v2/health/live", get(health))
        .route("/v2/health/ready", get(health))
        .merge(protected)
        .fallback(not_found)
        .layer(middleware::map_response(close_after_error))
        .with_state(state)
}

/// An error may be answered before the request body is read (413, 401, 408); closing
/// with unread bytes resets the connection, so the client must not send its next request on it.
async fn close_after_error(mut response: Response) -> Response {
    if response.status().is_client_error() || response.status().is_server_error() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn health() -> Json<serde_json::Value> {
    // Models load before the listener opens, so serving at all means live and ready.
    Json(json!({ "live": true, "ready": true }))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no endpoint {} {}; see /v2, /v2/models/{{name}}, /v2/models/{{name}}/infer",
        request.method(),
        request.uri().path()
    ))
}

/// Constant-time comparison, so response timing does not reveal how much of a token matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_bearer(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.bearer_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token; send 'Authorization: Bearer <token>'",
            )
            .into_response();
        }
    }
    next.run(request).await
}

async fn server_metadata(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "name": "edge-runtime",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
        "engine": state.engine,
        "limits": {
            "max_body_bytes": state.limits.max_body_bytes,
            "max_concurrency": state.limits.max_concurrency,
        },
    }))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

impl AppState {
    /// The answer to a body that could not be read, counted when a limit cut it off.
    fn body_error(&self, e: ReadError) -> ApiError {
        match e {
            ReadError::TooLarge { .. } => self.metrics.refused("max_body"),
            ReadError::TooSlow { .. } => self.metrics.refused("body_timeout"),
            ReadError::Broken(_) => {}
        }
        ApiError::new(e.status(), e.to_string())
    }

    /// The serving version of the model `path` names (and its version, if it names one).
    fn model(&self, path: &ModelPath) -> Result<Arc<Model>, ApiError> {
        let model = self
            .models
            .get(&path.name)
            .map(ArcSwap::load_full)
            .ok_or_else(|| {
                let mut names: Vec<&String> = self.models.keys().collect();
                names.sort();
                ApiError::not_found(format!(
                    "unknown model '{}'; this server serves {names:?}",
                    path.name
                ))
            })?;
        match &path.version {
            Some(v) if *v != model.version => Err(ApiError::not_found(format!(
                "model '{}' has version '{}', not '{v}'",
                model.name, model.version
            ))),
            _ => Ok(model),
        }
    }
}

async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(path): Path<ModelPath>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let model = state.model(&path)?;
    Ok(Json(json!({
        "name": model.name,
        "versions": [model.version],
        "platform": "onnx",
        "inputs": model.inputs,
        "outputs": model.outputs,
    })))
}

async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(path): Path<ModelPath>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let model = state.model(&path)?;
    Ok(Json(json!({ "name": model.name, "ready": true })))
}

async fn infer(
    State(state): State<Arc<AppState>>,
    Path(path): Path<ModelPath>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let result = run_infer(&state, &path, request).await;
    let label = state
        .models
        .get_key_value(&path.name)
        .map_or("", |(name, _)| name.as_str());
    let response = result.into_response();
    state
        .metrics
        .request(label, response.status().as_u16(), started.elapsed());
    response
}

/// A header's value as a byte count.
fn byte_count(
    headers: &HeaderMap,
    name: impl header::AsHeaderName,
    what: &str,
) -> Result<Option<usize>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| ApiError::bad_request(format!("{what} must be a byte count")))
        })
        .transpose()
}

async fn run_infer(
    state: &AppState,
    path: &ModelPath,
    request: Request,
) -> Result<Response, ApiError> {
    let model = state.model(path)?;
    let (parts, body) = request.into_parts();
    let size = BodySize {
        json_len: byte_count(
            &parts.headers,
            HEADER_CONTENT_LENGTH,
            "Inference-Header-Content-Length",
        )?,
        content_length: byte_count(&parts.headers, header::CONTENT_LENGTH, "Content-Length")?,
        limit: state.limits.max_body_bytes,
    };
    let mut body = BodyReader::new(body, size.content_length.map(|n| n as u64), &state.limits)
        .map_err(|e| state.body_error(e))?;
    let request = decode_stream(&mut body, size, &model.inputs, &model.outputs)
        .await
        .map_err(|e| match e {
            DecodeError::Invalid(e) => ApiError::bad_request(e.0),
            DecodeError::Body(e) => state.body_error(e),
        })?;
    drop(body);
    // Only a request that has arrived whole takes a slot, or waits for one (as many wait as
    // there are connections, at most).
    let _slot = state
        .engine_slots
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the engine slots were closed"))?;

    // A blocking-pool thread. block_in_place on a multi-thread runtime, which skips this hop,
    // was no faster on the 2-core host (cls, binary tensors, device builds): 5 paired
    // latency-bench runs gave tract -47 us and onnxruntime +37 us a request, and one `edgeimg
    // bench` each put the HTTP overhead at 229 / 208 us against this hop's 192 / 163 us.
    let runner = model.clone();
    let run = tokio::task::spawn_blocking(move || runner.run(request.inputs))
        .await
        .map_err(|e| {
            ApiError::internal(format!(
                "the engine crashed while running '{}': {e}",
                model.name
            ))
        })?
        .map_err(|e| ApiError::internal(format!("running model '{}': {e}", model.name)))?;
    let engine_time = run.session_time;
    state.metrics.inference(&model.name, engine_time);

    let encoded = encode_response(
        &model.name,
        &model.version,
        request.id.as_deref(),
        &request.outputs,
        &run.outputs,
    );
    let mut response = encoded.body.into_response();
    let headers = response.headers_mut();
    // The model's share of the request (W3C Server Timing): `session.run` alone, so a client
    // can tell the model's time from everything else the server does (decoding, the engine's
    // input and output copies, the hand-off to the engine thread, encoding).
    if let Ok(timing) =
        HeaderValue::from_str(&format!("infer;dur={:.3}", engine_time.as_secs_f64() * 1e3))
    {
        headers.insert(HEADER_SERVER_TIMING, timing);
    }
    match encoded.json_len {
        Some(n) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(HEADER_CONTENT_LENGTH, HeaderValue::from(n));
        }
        None => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    Ok(response)
}
