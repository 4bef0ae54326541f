//! `edgeimg update --image DIR`: a built image's `.update` artifact streamed to a device's
//! `POST /v2/edgeimg/system/update`, then the device watched (`GET /v2/edgeimg/system`) through
//! its reboots until the new version commits or the device is back on the old one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use edge_config::system::{Attempt, Outcome, SlotState};
use serde::Deserialize;

use crate::outputs::manifest::{Manifest, MANIFEST_FILE};
use crate::update::post_file;

/// `GET /v2/edgeimg/system`.
#[derive(Debug, Clone, Deserialize)]
pub struct SystemStatus {
    pub version: String,
    pub slot: Option<String>,
    pub state: Option<SlotState>,
    #[serde(default)]
    pub update_in_progress: bool,
}

/// How an update ended.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateResult {
    /// The device refused the artifact; nothing was written.
    Refused { status: u16, reason: String },
    /// The new version runs, committed.
    Committed { version: String, seconds: f64 },
    /// The device is back on `running`, reporting why `version` was rolled back.
    RolledBack {
        version: String,
        running: String,
        reason: String,
        seconds: f64,
    },
}

/// The `.update` artifact a build wrote in `image_dir`.
pub fn artifact_in(image_dir: &Path) -> Result<PathBuf> {
    let manifest = Manifest::read(&image_dir.join(MANIFEST_FILE))?;
    manifest
        .outputs
        .iter()
        .find(|o| o.kind == "update")
        .map(|o| image_dir.join(&o.file))
        .with_context(|| {
            format!(
                "{} holds no .update: the recipe needs [system_updates] with a signing_key",
                image_dir.display()
            )
        })
}

fn api(device: &str, path: &str) -> String {
    format!("{}{path}", device.trim_end_matches('/'))
}

/// Streams the artifact; `Ok(None)` when the device took it and is installing it.
pub fn push(
    device: &str,
    artifact: &Path,
    token: Option<&str>,
    progress: bool,
) -> Result<Option<UpdateResult>> {
    let url = api(device, "/v2/edgeimg/system/update");
    let posted = post_file(&url, artifact, token, &[], progress)?;
    match posted.status {
        202 => Ok(None),
        404 if posted.reason().is_empty() => {
            bail!("{url} answered 404: the device takes no system updates ([system_updates] in its recipe)")
        }
        status => Ok(Some(UpdateResult::Refused {
            status,
            reason: posted.reason(),
        })),
    }
}

/// The device's status; an error while it cannot be reached (rebooting).
pub fn status(device: &str, token: Option<&str>) -> Result<SystemStatus> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let url = api(device, "/v2/edgeimg/system");
    let mut request = agent.get(&url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().with_context(|| format!("GET {url}"))?;
    let text = response.body_mut().read_to_string()?;
    serde_json::from_str(&text).with_context(|| format!("GET {url} answered {text}"))
}

/// Watches the device after it took `version` until the update ended: the new version
/// running committed, or the old one running with the attempt recorded as rolled back.
/// `ask` asks the device (the harness also restarts QEMU in it when the guest rebooted).
/// `before` is the last attempt the device reported before the push: the same again is not
/// this update's outcome.
pub fn wait_for_outcome(
    version: &str,
    before: Option<&Attempt>,
    timeout: Duration,
    started: Instant,
    mut ask: impl FnMut() -> Result<SystemStatus>,
) -> Result<UpdateResult> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("the device was not reached");
    while Instant::now() < deadline {
        match ask() {
            Ok(status) => {
                if let Some(attempt) = status.state.as_ref().and_then(|s| s.last_attempt.as_ref()) {
                    if attempt.version == version && Some(attempt) != before {
                        let seconds = started.elapsed().as_secs_f64();
                        return Ok(match attempt.outcome {
                            Outcome::Committed if status.version == version => {
                                UpdateResult::Committed {
                                    version: version.into(),
                                    seconds,
                                }
                            }
                            Outcome::Committed => bail!(
                                "the device says version {version} committed but runs version {}",
                                status.version
                            ),
                            _ => UpdateResult::RolledBack {
                                version: version.into(),
                                running: status.version,
                                reason: attempt.reason.clone(),
                                seconds,
                            },
                        });
                    }
                }
                last = format!(
                    "running version {}, no outcome for {version} yet",
                    status.version
                );
            }
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    bail!(
        "no outcome for version {version} within {} s ({last})",
        timeout.as_secs()
    )
}
