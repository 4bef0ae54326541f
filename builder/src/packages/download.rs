//! Downloads a stalled or flaky mirror cannot hang: connect and read timeouts, a few attempts
//! with growing pauses between them, and a download cut off part way resumed where it stopped
//! (an HTTP `Range` request; a server that ignores it sends the whole file again). What arrives
//! is verified by the caller either way (signature, size, checksum).

use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::progress::Progress;

/// How patient a download is.
#[derive(Debug, Clone)]
pub struct Patience {
    /// Name lookup plus TCP (and TLS) connection.
    pub connect: Duration,
    /// The longest wait for the response head, and for each read of the body.
    pub read: Duration,
    pub attempts: u32,
    /// The pause after the first failed attempt; it doubles after each further one.
    pub first_pause: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            connect: Duration::from_secs(15),
            read: Duration::from_secs(30),
            attempts: 5,
            first_pause: Duration::from_secs(1),
        }
    }
}

/// Why one attempt failed, and whether another may succeed.
enum Failure {
    /// Worth another attempt: a timeout, a reset, a cut-off body, a 5xx or 429.
    Transient(anyhow::Error),
    /// Not: a 404, a file over the limit.
    Final(anyhow::Error),
}

/// `url`'s bytes, at most `limit` of them (one more is read to tell a file that is too large).
pub fn download(url: &str, label: &str, progress: &Progress, limit: u64) -> Result<Vec<u8>> {
    download_with(&Patience::default(), url, label, progress, limit)
}

pub fn download_with(
    patience: &Patience,
    url: &str,
    label: &str,
    progress: &Progress,
    limit: u64,
) -> Result<Vec<u8>> {
    // Servers are verified against the system's CA store, as curl and pip verify them, so
    // that downloads work behind a TLS proxy whose CA the machine trusts.
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_resolve(Some(patience.connect))
        .timeout_connect(Some(patience.connect))
        .timeout_recv_response(Some(patience.read))
        .timeout_per_read(Some(patience.read))
        .http_status_as_error(false)
        .build()
        .into();
    let mut bytes = Vec::new();
    let mut pause = patience.first_pause;
    let mut failures = Vec::new();
    for attempt in 1..=patience.attempts.max(1) {
        match attempt_once(&agent, url, label, progress, limit, &mut bytes) {
            Ok(()) => return Ok(bytes),
            Err(Failure::Final(e)) => return Err(e.context(format!("cannot download {url}"))),
            Err(Failure::Transient(e)) => {
                failures.push(format!("attempt {attempt}: {e:#}"));
                if attempt < patience.attempts {
                    std::thread::sleep(pause);
                    pause *= 2;
                }
            }
        }
    }
    Err(anyhow!(
        "cannot download {url} after {} attempts ({}); is the mirror reachable? a local mirror (--mirror DIR) works offline",
        failures.len(),
        failures.join("; ")
    ))
}

/// One request: the whole file into `bytes`, or the rest of it after what `bytes` holds.
fn attempt_once(
    agent: &ureq::Agent,
    url: &str,
    label: &str,
    progress: &Progress,
    limit: u64,
    bytes: &mut Vec<u8>,
) -> Result<(), Failure> {
    let mut request = agent.get(url);
    if !bytes.is_empty() {
        request = request.header("Range", format!("bytes={}-", bytes.len()));
    }
    let mut response = request.call().map_err(|e| Failure::Transient(anyhow!(e)))?;
    let status = response.status().as_u16();
    match status {
        200 => bytes.clear(),
        206 if resumes_at(&response, bytes.len()) => {}
        206 => {
            // A range we did not ask for: start over.
            bytes.clear();
            return Err(Failure::Transient(anyhow!(
                "the server sent another range than asked"
            )));
        }
        408 | 429 | 500..=599 => {
            return Err(Failure::Transient(anyhow!("the server answered {status}")))
        }
        _ => return Err(Failure::Final(anyhow!("the server answered {status}"))),
    }
    let total = response
        .body()
        .content_length()
        .map(|rest| rest + bytes.len() as u64);
    if total.is_some_and(|t| t > limit) {
        return Err(Failure::Final(too_large(limit, label)));
    }
    let bar = progress.download(label, total);
    bar.set_position(bytes.len() as u64);
    let room = limit.saturating_add(1).saturating_sub(bytes.len() as u64);
    let mut reader = bar.wrap_read(response.body_mut().as_reader()).take(room);
    // What arrived before a failure is kept for the next attempt to resume from.
    let read = reader.read_to_end(bytes);
    bar.finish_and_clear();
    if bytes.len() as u64 > limit {
        return Err(Failure::Final(too_large(limit, label)));
    }
    read.map(drop)
        .map_err(|e| Failure::Transient(anyhow!("cut off after {} bytes: {e}", bytes.len())))
}

/// Whether a 206 answer's `Content-Range` starts at `offset`.
fn resumes_at(response: &ureq::http::Response<ureq::Body>, offset: usize) -> bool {
    response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|start| start.parse::<usize>().ok())
        == Some(offset)
}

fn too_large(limit: u64, label: &str) -> anyhow::Error {
    anyhow!(
        "it is larger than {}, the most edgeimg reads for {label}",
        bytesize::ByteSize::b(limit)
    )
}

#[cfg(test)]
mod tests;
