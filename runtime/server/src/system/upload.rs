//! `POST /v2/edgeimg/system/update`: the body is the `<name>.update` artifact.
//!
//! It streams to `inbox/incoming.partial` (one chunk in memory at a time, under the API's body
//! rate limits and `max_update_bytes`), is read back whole with `read_artifact` (signature,
//! board, sizes, every part's sha256), and only then is fsynced and renamed to
//! `staged.update`, which init installs. Every refusal removes the partial file.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use edge_config::artifact::{read_artifact, ErrorClass};
use serde_json::json;

use super::{system, SystemUpdates};
use crate::body::{BodyReader, ReadError};
use crate::error::ApiError;
use crate::http::AppState;
use crate::protocol::Source;

/// The upload as it arrives, in the inbox.
pub const INCOMING: &str = "incoming.partial";

fn refused(status: StatusCode, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        status,
        format!("system update refused: {why}; the device keeps running its current version"),
    )
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "another update is in progress; try again when it has been installed (GET /v2/edgeimg/system)",
    )
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let system = system(&state)?;
    let (parts, body) = request.into_parts();
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .ok_or_else(|| {
            refused(
                StatusCode::LENGTH_REQUIRED,
                "send the artifact with a Content-Length",
            )
        })?;
    let _busy = system.uploading.try_lock().map_err(|_| busy())?;
    if system.staged().exists() {
        return Err(busy());
    }
    let max = system.config.max_update_bytes;
    let too_large = || {
        refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the artifact is larger than system.max_update_bytes = {max}"),
        )
    };
    if length > max {
        return Err(too_large());
    }
    let mut limits = state.limits.clone();
    limits.max_body_bytes = usize::try_from(max).unwrap_or(usize::MAX);
    let mut body = BodyReader::new(body, Some(length), &limits).map_err(|_| too_large())?;

    let inbox = system.inbox();
    let partial = inbox.join(INCOMING);
    let received = receive(&mut body, &inbox, &partial).await;
    let result = match received {
        Ok(()) => check_and_stage(system, &partial).await,
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let version = result?;
    tracing::info!("system update {version} staged for init to install");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "version": version, "status": "installing" })),
    ))
}

/// Streams the body into `partial`.
async fn receive(body: &mut BodyReader, inbox: &Path, partial: &Path) -> Result<(), ApiError> {
    let local = |what: &str, e: io::Error| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{what} {} failed ({e}); system updates need the data partition",
                partial.display()
            ),
        )
    };
    std::fs::create_dir_all(inbox).map_err(|e| local("creating the inbox of", e))?;
    let mut file = File::create(partial).map_err(|e| local("creating", e))?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = body.read(&mut buf).await.map_err(|e| {
            let why = match &e {
                ReadError::TooLarge { limit } => {
                    format!("the artifact is larger than system.max_update_bytes = {limit}")
                }
                other => other.to_string(),
            };
            refused(e.status(), why)
        })?;
        if n == 0 {
            return Ok(());
        }
        file.write_all(&buf[..n]).map_err(|e| local("writing", e))?;
    }
}

/// Checks the whole file as init will, then makes it `staged.update` durably.
async fn check_and_stage(system: &SystemUpdates, partial: &Path) -> Result<String, ApiError> {
    let (key, config, partial, staged) = (
        system.public_key,
        system.config.clone(),
        partial.to_path_buf(),
        system.staged(),
    );
    tokio::task::spawn_blocking(move || {
        let file = File::open(&partial)
            .map_err(|e| ApiError::internal(format!("opening {}: {e}", partial.display())))?;
        let manifest = read_artifact(BufReader::new(&file), &key, &config, |_, part| {
            io::copy(part, &mut io::sink()).map(drop)
        })
        .map_err(|e| {
            let status = match e.class() {
                ErrorClass::Malformed => StatusCode::BAD_REQUEST,
                ErrorClass::Unsigned => StatusCode::FORBIDDEN,
                ErrorClass::Unsuitable => StatusCode::UNPROCESSABLE_ENTITY,
                ErrorClass::Local => StatusCode::INTERNAL_SERVER_ERROR,
            };
            refused(status, e)
        })?;
        // Durable before it is visible under the name init acts on.
        let durable = || -> io::Result<()> {
            file.sync_all()?;
            std::fs::rename(&partial, &staged)?;
            File::open(staged.parent().expect("in the inbox"))?.sync_all()
        };
        durable().map_err(|e| ApiError::internal(format!("staging {}: {e}", staged.display())))?;
        Ok(manifest.version)
    })
    .await
    .map_err(|e| ApiError::internal(format!("checking the update crashed: {e}")))?
}
