//! A/B system updates, the server's half: `POST /v2/edgeimg/system/update` takes a signed
//! artifact into `<state_dir>/inbox/` for init to install, `GET /v2/edgeimg/system` reports
//! the slots, and the start-up golden check that a trial boot's commit waits on. Init alone
//! writes slots and `state.json`; the server only stages.

mod startup;
mod upload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::Json;
use edge_config::signing::{self, VerifyingKey};
use edge_config::system::{SlotState, SystemConfig, INBOX, STAGED, STATE};
use serde_json::json;

use crate::error::ApiError;
use crate::http::AppState;

pub use startup::{golden_check, on_trial, record_start_failure, START_FAILURE};
pub use upload::{update, INCOMING};

/// What the system update routes need.
pub struct SystemUpdates {
    pub config: SystemConfig,
    pub public_key: VerifyingKey,
    /// One upload at a time.
    pub uploading: tokio::sync::Mutex<()>,
}

impl SystemUpdates {
    /// `None` when the device config has no `[system]` or takes no updates over the API.
    pub fn new(config: Option<&SystemConfig>) -> anyhow::Result<Option<SystemUpdates>> {
        let Some(config) = config.filter(|c| c.updates) else {
            return Ok(None);
        };
        let path = config.public_key_file.as_deref().context(
            "system.updates = true needs system.public_key_file: the key updates must be signed with",
        )?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading system.public_key_file {path}"))?;
        let public_key = signing::parse_public_key(&text)
            .map_err(|why| anyhow::anyhow!("system.public_key_file {path} {why}"))?;
        Ok(Some(SystemUpdates {
            config: config.clone(),
            public_key,
            uploading: tokio::sync::Mutex::new(()),
        }))
    }

    pub fn inbox(&self) -> PathBuf {
        Path::new(&self.config.state_dir).join(INBOX)
    }

    fn staged(&self) -> PathBuf {
        self.inbox().join(STAGED)
    }
}

fn system(state: &AppState) -> Result<&SystemUpdates, ApiError> {
    // The routes exist only with updates on; this is for the handlers' types.
    state
        .system
        .as_ref()
        .ok_or_else(|| ApiError::not_found("system updates are off on this device"))
}

/// `GET /v2/edgeimg/system`.
pub async fn status(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let system = system(&state)?;
    let slot_state = read_state(Path::new(&system.config.state_dir).join(STATE).as_path());
    let slot = running_slot(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
        .map(str::to_string)
        .or_else(|| slot_state.as_ref().map(|s| s.committed.clone()));
    let in_progress = system.uploading.try_lock().is_err()
        || system.staged().exists()
        || slot_state.as_ref().is_some_and(|s| s.trial.is_some());
    Ok(Json(json!({
        "version": system.config.version,
        "board": system.config.board,
        "arch": system.config.arch,
        "slot": slot,
        "state": slot_state,
        "update_in_progress": in_progress,
    })))
}

/// `state.json` as init last wrote it; `None` before init's first write (or if unreadable:
/// a status report is no place to fail).
pub(crate) fn read_state(path: &Path) -> Option<SlotState> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The `edgeimg.slot=` the kernel was booted with.
pub(crate) fn running_slot(cmdline: &str) -> Option<&str> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("edgeimg.slot="))
}
