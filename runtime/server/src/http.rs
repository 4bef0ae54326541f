//! The Open Inference Protocol v2 REST routes, `/metrics`, bearer auth and request limits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::engine::Model;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::protocol::{decode_request, encode_response, HEADER_CONTENT_LENGTH};

/// `server-timing: infer;dur=<ms>` on every inference response.
pub const HEADER_SERVER_TIMING: &str = "server-timing";

/// Everything the handlers share.
pub struct AppState {
    pub models: HashMap<String, Arc<Model>>,
    pub metrics: Metrics,
    pub engine: &'static str,
    pub bearer_token: Option<String>,
    pub max_body_bytes: usize,
    pub max_concurrency: usize,
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
        .route("/v2/models/{name}/versions/{version}/infer", post(infer))
        // Waits for a slot before the body is read, so at most max_concurrency bodies are in memory.
        .route_layer(GlobalConcurrencyLimitLayer::new(state.max_concurrency));
    let protected = Router::new()
        .route("/v2", get(server_metadata))
        .route("/metrics", get(metrics))
        .merge(model_routes("/v2/models/{name}"))
        .merge(model_routes("/v2/models/{name}/versions/{version}"))
        .merge(infer_routes)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_bearer,
        ));
    Router::new()
        .route("/v2/health/live", get(health))
        .route("/v2/health/ready", get(health))
        .merge(protected)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::map_response(close_after_error))
        .with_state(state)
}

/// An error may be answered before the request body is read (413, 401, a full queue); closing
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
    fn model(&self, path: &ModelPath) -> Result<&Arc<Model>, ApiError> {
        let model = self.models.get(&path.name).ok_or_else(|| {
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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = run_infer(&state, &path, &headers, body).await;
    let label = state.models.get(&path.name).map_or("", |m| m.name.as_str());
    let response = result.into_response();
    state
        .metrics
        .request(label, response.status().as_u16(), started.elapsed());
    response
}

async fn run_infer(
    state: &AppState,
    path: &ModelPath,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let model = state.model(path)?.clone();
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than max_body_bytes = {} (raise it in the device config, or send binary tensor data)",
                state.max_body_bytes
            ),
        ),
        other => ApiError::bad_request(format!("could not read the request body: {other}")),
    })?;
    let json_len = match headers.get(HEADER_CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("Inference-Header-Content-Length must be a byte count")
                })?,
        ),
    };
    let request = decode_request(&body, json_len, &model.inputs, &model.outputs)
        .map_err(|e| ApiError::bad_request(e.0))?;
    drop(body);

    let engine_started = Instant::now();
    let runner = model.clone();
    let outputs = tokio::task::spawn_blocking(move || runner.run(request.inputs))
        .await
        .map_err(|e| {
            ApiError::internal(format!(
                "the engine crashed while running '{}': {e}",
                model.name
            ))
        })?
        .map_err(|e| ApiError::internal(format!("running model '{}': {e}", model.name)))?;
    let engine_time = engine_started.elapsed();
    state.metrics.inference(&model.name, engine_time);

    let encoded = encode_response(
        &model.name,
        &model.version,
        request.id.as_deref(),
        &request.outputs,
        &outputs,
    );
    let mut response = encoded.body.into_response();
    let headers = response.headers_mut();
    // The engine's share of the request (W3C Server Timing), so a client can tell the model's
    // time from the HTTP path's.
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
