//! Timing inference requests against one served model: one client in a row for latency, the
//! engine's share of each from its `server-timing` header, then concurrent clients for
//! throughput.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::bench::round3;
use crate::bench::stats::percentile;

/// An inference endpoint and the request the benchmark sends it.
pub struct Endpoint<'a> {
    /// `http://host:port/v2/models/<name>/infer`.
    pub url: String,
    pub request: &'a [u8],
    pub json_len: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub runs: usize,
    /// Client-side, request sent to answer read, in ms.
    pub request_p50_ms: f64,
    pub request_p99_ms: f64,
    /// The server's own figure for the model run (`server-timing: infer;dur=`), in ms.
    pub engine_p50_ms: f64,
    pub engine_p99_ms: f64,
    /// Median of (request - engine) per request: what HTTP, decoding and encoding add.
    pub http_overhead_p50_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub clients: usize,
    pub requests: usize,
    pub per_second: f64,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(300)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// One request; (whole request, engine's share).
fn send(agent: &ureq::Agent, endpoint: &Endpoint) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut response = agent
        .post(&endpoint.url)
        .header("Content-Type", "application/octet-stream")
        .header("Inference-Header-Content-Length", endpoint.json_len)
        .send(endpoint.request)
        .with_context(|| format!("POST {}", endpoint.url))?;
    let body = response.body_mut().read_to_vec()?;
    let took = started.elapsed();
    if !response.status().is_success() {
        bail!(
            "POST {} answered {}: {}",
            endpoint.url,
            response.status(),
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    let engine_ms: f64 = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("infer;dur="))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{} sent no server-timing header", endpoint.url))?;
    Ok((took, Duration::from_secs_f64(engine_ms / 1e3)))
}

/// `warmup` untimed requests, then `runs` timed ones, one at a time.
pub fn latency(endpoint: &Endpoint, warmup: usize, runs: usize) -> Result<Latency> {
    let agent = agent();
    for _ in 0..warmup {
        send(&agent, endpoint)?;
    }
    let mut request = Vec::with_capacity(runs);
    let mut engine = Vec::with_capacity(runs);
    let mut overhead = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (took, engine_took) = send(&agent, endpoint)?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        request.push(ms(took));
        engine.push(ms(engine_took));
        overhead.push(ms(took.saturating_sub(engine_took)));
    }
    Ok(Latency {
        runs,
        request_p50_ms: round3(percentile(&request, 50.0)),
        request_p99_ms: round3(percentile(&request, 99.0)),
        engine_p50_ms: round3(percentile(&engine, 50.0)),
        engine_p99_ms: round3(percentile(&engine, 99.0)),
        http_overhead_p50_ms: round3(percentile(&overhead, 50.0)),
    })
}

/// `clients` threads sending `requests` in all, as fast as answers come.
pub fn throughput(endpoint: &Endpoint, clients: usize, requests: usize) -> Result<Throughput> {
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|i| {
                // Spread the remainder so exactly `requests` go out.
                let share = requests / clients + usize::from(i < requests % clients);
                scope.spawn(move || -> Result<()> {
                    let agent = agent();
                    for _ in 0..share {
                        send(&agent, endpoint)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a client thread panicked"))
    })?;
    Ok(Throughput {
        clients,
        requests,
        per_second: round3(requests as f64 / started.elapsed().as_secs_f64()),
    })
}
