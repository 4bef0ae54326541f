//! `edgeimg keygen`, `sign-model` and `update`: the host side of model updates. Keys and
//! signatures are the device's format (`edge_config::signing`); the upload is the ONNX file as
//! the body of `POST /v2/repository/models/{name}/load`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use edge_config::signing::{self, Digest, Sha512};
use indicatif::{ProgressBar, ProgressStyle};

/// Writes a new key pair to `<base>.key` (the secret, 0600) and `<base>.pub`; never replaces
/// an existing file. Returns both paths.
pub fn keygen(base: &Path) -> Result<(PathBuf, PathBuf)> {
    let secret_path = with_suffix(base, "key");
    let public_path = with_suffix(base, "pub");
    let (secret, public) = signing::generate();
    for (path, text, mode) in [
        (&secret_path, &secret, 0o600),
        (&public_path, &public, 0o644),
    ] {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .with_context(|| {
                format!(
                    "creating {} (an existing key is never replaced; pick another name)",
                    path.display()
                )
            })?;
        writeln!(file, "{text}")?;
        file.sync_all()?;
    }
    Ok((secret_path, public_path))
}

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{suffix}"));
    PathBuf::from(name)
}

/// The SHA-512 state of a file, read a chunk at a time.
fn digest_file(path: &Path) -> Result<Sha512> {
    let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut digest = Sha512::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(digest);
        }
        digest.update(&buf[..n]);
    }
}

/// Signs `model` with the secret key in `key_file`; the signature as base64 text.
pub fn sign_model(key_file: &Path, model: &Path) -> Result<String> {
    let text = std::fs::read_to_string(key_file)
        .with_context(|| format!("reading the secret key {}", key_file.display()))?;
    let key = signing::parse_secret_key(&text).map_err(|why| {
        anyhow::anyhow!(
            "{} {why}; give the .key file `edgeimg keygen` wrote",
            key_file.display()
        )
    })?;
    Ok(signing::sign(&key, digest_file(model)?))
}

/// What to upload, and where.
pub struct Upload<'a> {
    /// The device's API, e.g. `http://edge.local:8000`.
    pub device: &'a str,
    pub model: &'a Path,
    pub name: &'a str,
    pub token: Option<String>,
    /// Base64 text, from `edgeimg sign-model`.
    pub signature: Option<String>,
    pub allow_signature_change: bool,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// What the device did with an upload.
#[derive(Debug)]
pub enum Outcome {
    /// Checked and serving: its version, and the whole answer.
    Serving {
        version: String,
        answer: serde_json::Value,
        seconds: f64,
    },
    /// Refused: the HTTP status and the device's reason.
    Refused { status: u16, reason: String },
}

/// Uploads the model; the device's verdict. An error only when it could not be asked.
pub fn upload(upload: &Upload) -> Result<Outcome> {
    let url = format!(
        "{}/v2/repository/models/{}/load",
        upload.device.trim_end_matches('/'),
        upload.name
    );
    let mut headers = Vec::new();
    if let Some(signature) = &upload.signature {
        headers.push((signing::HEADER, signature.trim().to_string()));
    }
    if upload.allow_signature_change {
        headers.push(("X-Edgeimg-Allow-Signature-Change", "true".to_string()));
    }
    let posted = post_file(
        &url,
        upload.model,
        upload.token.as_deref(),
        &headers,
        upload.progress,
    )?;
    if posted.status == 200 {
        let version = posted.answer["version"]
            .as_str()
            .with_context(|| format!("the device answered 200 without a version: {}", posted.text))?
            .to_string();
        return Ok(Outcome::Serving {
            version,
            answer: posted.answer,
            seconds: posted.seconds,
        });
    }
    let reason = posted.reason();
    if posted.status == 404 && reason.is_empty() {
        bail!("{url} answered 404: is this an edge-runtime with model updates on?");
    }
    Ok(Outcome::Refused {
        status: posted.status,
        reason,
    })
}

/// A device's answer to a file it was sent.
pub struct Posted {
    pub status: u16,
    pub text: String,
    pub answer: serde_json::Value,
    /// From the first byte sent to the answer.
    pub seconds: f64,
}

impl Posted {
    /// The device's `error`, else its whole answer.
    pub fn reason(&self) -> String {
        self.answer["error"]
            .as_str()
            .map_or_else(|| self.text.trim().to_string(), str::to_string)
    }
}

/// POSTs `file` as the body of `url` (with a progress bar when `progress`), with the bearer
/// token and `headers`. An error only when the device could not be asked.
pub fn post_file(
    url: &str,
    file: &Path,
    token: Option<&str>,
    headers: &[(&str, String)],
    progress: bool,
) -> Result<Posted> {
    let opened = File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let size = opened.metadata()?.len();
    let bar = if progress {
        ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "uploading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        )
    } else {
        ProgressBar::hidden()
    };
    // The device checks what it got before it answers; an emulated one is slow.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent
        .post(url)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", size.to_string())
        // A device that refuses from the headers alone (busy, too large, no token) answers
        // before the body goes out, instead of closing the connection on it mid-stream.
        .header("Expect", "100-continue");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let started = Instant::now();
    let mut reader = bar.wrap_read(opened);
    let mut response = request
        .send(ureq::SendBody::from_reader(&mut reader))
        .with_context(|| format!("POST {url}"))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let answer = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Ok(Posted {
        status,
        text,
        answer,
        seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keygen_writes_a_private_secret_and_never_replaces_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("models");
        let (secret, public) = keygen(&base).unwrap();
        assert_eq!(secret, dir.path().join("models.key"));
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = format!("{:#}", keygen(&base).unwrap_err());
        assert!(err.contains("never replaced"), "{err}");
        // What sign_model makes, the device's check verifies.
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"model bytes").unwrap();
        let signature = signing::parse_signature(&sign_model(&secret, &model).unwrap()).unwrap();
        let key = signing::parse_public_key(&std::fs::read_to_string(&public).unwrap()).unwrap();
        assert!(signing::verify(
            &key,
            digest_file(&model).unwrap(),
            &signature
        ));
        std::fs::write(&model, b"model bytez").unwrap();
        assert!(!signing::verify(
            &key,
            digest_file(&model).unwrap(),
            &signature
        ));
    }
}
