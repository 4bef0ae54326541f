//! The model repository extension (Triton's paths): `POST /v2/repository/index`,
//! `POST /v2/repository/models/{name}/load` with the new ONNX file as the body
//! (`application/octet-stream`), `POST /v2/repository/models/{name}/unload`.
//!
//! A load streams the file into the store, loads it beside the serving version, checks its
//! signature (inputs and outputs) and its golden inference, makes it `current`, and only then
//! swaps it in: requests already running finish on the version they started with. Anything
//! refused leaves the serving version as it was.

pub mod check;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use edge_config::signing::{self as signature, Sha512, Signature, VerifyingKey};
use edge_config::{GoldenCheck, ModelConfig, ModelUpdates};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;

use crate::body::BodyReader;
use crate::engine::{Backend, Model, Plan};
use crate::error::ApiError;
use crate::http::AppState;
use crate::protocol::Source;
use store::{Current, ModelStore, FACTORY_VERSION};

/// `X-Edgeimg-Allow-Signature-Change: true` lets a version change the inputs or outputs.
pub const HEADER_ALLOW_SIGNATURE_CHANGE: &str = "x-edgeimg-allow-signature-change";

/// What the repository API needs beside the serving models.
pub struct Repository {
    pub backend: Arc<Backend>,
    pub store: PathBuf,
    pub max_model_bytes: u64,
    pub public_key: Option<VerifyingKey>,
    pub golden: Option<GoldenCheck>,
    pub threads: usize,
    /// The image's own model file of each name (version 1).
    pub factory: Vec<ModelConfig>,
    /// One update at a time.
    pub updating: tokio::sync::Mutex<()>,
}

impl Repository {
    /// Reads the public key; the store is created if missing (init makes it on the data
    /// partition; a boot without one has none, and loads are refused, naming why).
    pub fn new(
        updates: &ModelUpdates,
        backend: Arc<Backend>,
        factory: &[ModelConfig],
        threads: usize,
    ) -> anyhow::Result<Repository> {
        let public_key = updates
            .public_key_file
            .as_deref()
            .map(|path| {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading model_updates.public_key_file {path}"))?;
                signature::parse_public_key(&text)
                    .map_err(|why| anyhow::anyhow!("model_updates.public_key_file {path} {why}"))
            })
            .transpose()?;
        Ok(Repository {
            backend,
            store: PathBuf::from(&updates.store),
            max_model_bytes: updates.max_model_bytes,
            public_key,
            golden: updates.golden.clone(),
            threads,
            factory: factory.to_vec(),
            updating: tokio::sync::Mutex::new(()),
        })
    }

    fn factory(&self, name: &str) -> Option<&ModelConfig> {
        self.factory.iter().find(|m| m.name == name)
    }
}

/// The version of `factory`'s model to serve at start: what the store's `current` names if it
/// is there whole and loads, else the factory version (and why, on stderr). Leftovers of
/// updates cut off by a power loss are removed.
pub fn boot_model(
    backend: &Backend,
    factory: &ModelConfig,
    store_root: &Path,
    threads: usize,
    plan: Plan,
) -> anyhow::Result<Model> {
    let store = ModelStore::new(store_root, &factory.name);
    let chosen = store.current_file().and_then(|file| {
        let Some((version, path)) = file else {
            return Ok(None);
        };
        let config = ModelConfig {
            name: factory.name.clone(),
            path: path.to_string_lossy().into_owned(),
            version: version.to_string(),
        };
        Ok(Some((
            version,
            Model::load_plan(backend, &config, threads, plan)?,
        )))
    });
    let (keep, model) = match chosen {
        Ok(Some((version, model))) => {
            eprintln!(
                "edge-runtime: model '{}': serving version {version} from {}",
                factory.name,
                store.dir().display()
            );
            (vec![version], model)
        }
        Ok(None) => (
            Vec::new(),
            Model::load_plan(backend, factory, threads, plan)?,
        ),
        Err(why) => {
            eprintln!(
                "edge-runtime: model '{}': {}/current names a version that cannot serve ({why:#}); serving the factory version {FACTORY_VERSION}",
                factory.name,
                store.dir().display()
            );
            (
                Vec::new(),
                Model::load_plan(backend, factory, threads, plan)?,
            )
        }
    };
    if store.dir().exists() {
        if let Err(e) = store.remove_all_but(&keep) {
            eprintln!(
                "edge-runtime: model '{}': cleaning the store: {e:#}",
                factory.name
            );
        }
    }
    Ok(model)
}

fn repository(state: &AppState) -> Result<&Repository, ApiError> {
    state.repository.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "model updates are off on this device; the recipe enables them with [runtime] model_updates = true",
        )
    })
}

fn serving<'a>(state: &'a AppState, name: &str) -> Result<&'a ArcSwap<Model>, ApiError> {
    state.models.get(name).ok_or_else(|| {
        let mut names: Vec<&String> = state.models.keys().collect();
        names.sort();
        ApiError::not_found(format!(
            "unknown model '{name}'; this device serves {names:?} and takes new versions of those only"
        ))
    })
}

/// `POST /v2/repository/index`: every version in the store and the image, and which serves.
pub async fn index(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let repository = repository(&state)?;
    let mut entries = Vec::new();
    let mut names: Vec<&String> = state.models.keys().collect();
    names.sort();
    for name in names {
        let serving = state.models[name].load().version.clone();
        let store = ModelStore::new(&repository.store, name);
        let mut versions = vec![FACTORY_VERSION];
        versions.extend(store.versions());
        for version in versions {
            let version = version.to_string();
            let ready = version == serving;
            entries.push(json!({
                "name": name,
                "version": version,
                "state": if ready { "READY" } else { "UNAVAILABLE" },
                "reason": if ready { "" } else { "not the serving version" },
            }));
        }
    }
    Ok(Json(json!(entries)))
}

/// `POST /v2/repository/models/{name}/unload`: back to the factory version; uploaded versions
/// are removed. The device never stops serving a model the image declares.
pub async fn unload(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let repository = repository(&state)?;
    let slot = serving(&state, &name)?;
    let _busy = repository.updating.try_lock().map_err(|_| busy())?;
    let factory = repository
        .factory(&name)
        .ok_or_else(|| ApiError::internal(format!("no factory version of '{name}'")))?
        .clone();
    if slot.load().version == FACTORY_VERSION.to_string() {
        return Ok(Json(
            json!({ "name": name, "version": factory.version, "state": "READY" }),
        ));
    }
    let (backend, threads, store) = (
        repository.backend.clone(),
        repository.threads,
        ModelStore::new(&repository.store, &name),
    );
    let model = tokio::task::spawn_blocking(move || -> anyhow::Result<Model> {
        let model = Model::load(&backend, &factory, threads)?;
        // Back to the image's file: `current` names version 1, then the uploads can go.
        store.write_current(&Current {
            version: FACTORY_VERSION,
            sha256: "factory".into(),
        })?;
        Ok(model)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the unload crashed: {e}")))?
    .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let version = model.version.clone();
    slot.store(Arc::new(model));
    let _ = ModelStore::new(&repository.store, &name).remove_all_but(&[]);
    Ok(Json(
        json!({ "name": name, "version": version, "state": "READY" }),
    ))
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "another model update is in progress; try again when it has finished",
    )
}

fn refused(status: StatusCode, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        status,
        format!("update refused: {why}; the serving version is unchanged"),
    )
}

/// `POST /v2/repository/models/{name}/load`: the body is the new ONNX file.
pub async fn load(
    State(state): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    request: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let repository = repository(&state)?;
    let slot = serving(&state, &name)?;
    let _busy = repository.updating.try_lock().map_err(|_| busy())?;
    let (parts, body) = request.into_parts();
    let options = LoadOptions::from_headers(&parts.headers, repository)?;

    let store = ModelStore::new(&repository.store, &name);
    let version = store.next_version();
    let incoming = store.fresh_incoming().map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the model store {} is not writable ({e:#}); model updates need the data partition",
                repository.store.display()
            ),
        )
    })?;
    let content_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut limits = state.limits.clone();
    limits.max_body_bytes = usize::try_from(repository.max_model_bytes).unwrap_or(usize::MAX);
    let mut body = BodyReader::new(body, content_length, &limits).map_err(|e| {
        refused(
            e.status(),
            format!(
                "the model is larger than max_model_bytes = {}",
                repository.max_model_bytes
            ),
        )
    })?;
    let digests = receive(&mut body, &incoming.join(store::MODEL_FILE))
        .await
        .inspect_err(|_| store.discard_incoming())?;
    if let Some(key) = &repository.public_key {
        let signature = options
            .signature
            .as_ref()
            .expect("required by from_headers");
        if !signature::verify(key, digests.sha512, signature) {
            store.discard_incoming();
            return Err(refused(
                StatusCode::FORBIDDEN,
                "the signature does not verify with the device's model_public_key (sign the file with the matching key: edgeimg sign-model)",
            ));
        }
    }

    let serving_model = slot.load_full();
    let (backend, threads, golden) = (
        repository.backend.clone(),
        repository.threads,
        repository.golden.clone(),
    );
    let sha256 = digests.sha256.clone();
    let checked_store = store.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        check_and_commit(
            &backend,
            &checked_store,
            &serving_model,
            Candidate {
                version,
                sha256,
                threads,
                allow_signature_change: options.allow_signature_change,
            },
            golden.as_ref(),
        )
    })
    .await
    .map_err(|e| ApiError::internal(format!("checking the new version crashed: {e}")))?;
    let (model, golden_notes) = match outcome {
        Ok(done) => done,
        Err(refusal) => {
            store.discard_incoming();
            let _ = store.remove_version(version);
            return Err(refusal);
        }
    };
    let previous = slot.swap(Arc::new(model));
    tracing::info!(
        "model '{name}': version {} replaced by version {version}",
        previous.version
    );
    // `current` names the new version: every other upload may go.
    if let Err(e) = store.remove_all_but(&[version]) {
        tracing::warn!("model '{name}': removing old versions: {e:#}");
    }
    Ok(Json(json!({
        "name": name,
        "version": version.to_string(),
        "state": "READY",
        "sha256": digests.sha256,
        "bytes": digests.bytes,
        "golden": golden_notes,
    })))
}

struct LoadOptions {
    signature: Option<Signature>,
    allow_signature_change: bool,
}

impl LoadOptions {
    fn from_headers(headers: &HeaderMap, repository: &Repository) -> Result<LoadOptions, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type != "application/octet-stream" {
            return Err(refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "send the ONNX file itself as the body with Content-Type: application/octet-stream (got {content_type:?}; Triton's JSON file: parameters are not taken)"
                ),
            ));
        }
        let signature = headers
            .get(signature::HEADER)
            .map(|v| {
                v.to_str()
                    .map_err(|_| "the signature header is not text".to_string())
                    .and_then(signature::parse_signature)
                    .map_err(|why| refused(StatusCode::BAD_REQUEST, why))
            })
            .transpose()?;
        if repository.public_key.is_some() && signature.is_none() {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "the model is not signed and this device takes signed models only (send the signature from edgeimg sign-model in X-Edgeimg-Signature)",
            ));
        }
        let allow_signature_change = match headers.get(HEADER_ALLOW_SIGNATURE_CHANGE) {
            None => false,
            Some(v) => match v.to_str() {
                Ok("true") => true,
                Ok("false") => false,
                _ => {
                    return Err(refused(
                        StatusCode::BAD_REQUEST,
                        "X-Edgeimg-Allow-Signature-Change must be true or false",
                    ))
                }
            },
        };
        Ok(LoadOptions {
            signature,
            allow_signature_change,
        })
    }
}

struct Digests {
    sha256: String,
    sha512: Sha512,
    bytes: u64,
}

/// Streams the body into `path`, hashing it on the way: the file is in memory one chunk at a
/// time, never whole.
async fn receive(body: &mut BodyReader, path: &Path) -> Result<Digests, ApiError> {
    let mut file = std::fs::File::create(path)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", path.display())))?;
    let (mut sha256, mut sha512, mut bytes) = (Sha256::new(), Sha512::new(), 0u64);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = body.read(&mut buf).await.map_err(|e| {
            let why = match &e {
                crate::body::ReadError::TooLarge { limit } => {
                    format!("the model is larger than max_model_bytes = {limit}")
                }
                other => other.to_string(),
            };
            refused(e.status(), why)
        })?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        sha256.update(chunk);
        sha512.update(chunk);
        bytes += n as u64;
        // A chunk at a time into the page cache; the fsync that waits for the disk runs on a
        // blocking thread (commit_incoming).
        file.write_all(chunk)
            .map_err(|e| ApiError::internal(format!("writing {}: {e}", path.display())))?;
    }
    if bytes == 0 {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "the body is empty; send the ONNX file as the body",
        ));
    }
    Ok(Digests {
        sha256: hex::encode(sha256.finalize()),
        sha512,
        bytes,
    })
}

struct Candidate {
    version: u64,
    sha256: String,
    threads: usize,
    allow_signature_change: bool,
}

/// Makes the upload a version folder, loads it, checks it against the serving version and the
/// golden inference, and makes it `current`. The model and the golden check's notes, or the
/// refusal.
fn check_and_commit(
    backend: &Backend,
    store: &ModelStore,
    serving: &Model,
    candidate: Candidate,
    golden: Option<&GoldenCheck>,
) -> Result<(Model, String), ApiError> {
    let path = store
        .commit_incoming(candidate.version)
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let config = ModelConfig {
        name: serving.name.clone(),
        path: path.to_string_lossy().into_owned(),
        version: candidate.version.to_string(),
    };
    let model = Model::load(backend, &config, candidate.threads).map_err(|e| {
        refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the model does not load: {e:#}"),
        )
    })?;
    if !candidate.allow_signature_change {
        if let Some(why) = check::signature_mismatch(serving, &model) {
            return Err(refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "{why} (send X-Edgeimg-Allow-Signature-Change: true if clients expect that)"
                ),
            ));
        }
    }
    // The recipe's golden inputs fit the declared inputs; a changed signature gets ones.
    let golden = golden.filter(|_| {
        !candidate.allow_signature_change || check::signature_mismatch(serving, &model).is_none()
    });
    let notes = check::golden_inference(&model, golden)
        .map_err(|why| refused(StatusCode::UNPROCESSABLE_ENTITY, why))?;
    store
        .write_current(&Current {
            version: candidate.version,
            sha256: candidate.sha256,
        })
        .map_err(|e| refused(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    Ok((model, notes))
}
