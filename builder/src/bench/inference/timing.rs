//! Timing inference requests against one served model: one client in a row for latency, the
//! model's share of each from its `server-timing` header, then concurrent clients for
//! throughput. Each client keeps one connection open.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::client::{Connection, Wait};
use crate::bench::round3;
use crate::bench::stats::percentile;

/// An inference endpoint and the request the benchmark sends it.
pub struct Endpoint<'a> {
    /// `http://host:port/v2/models/<name>/infer`.
    pub url: String,
    pub request: &'a [u8],
    pub json_len: usize,
    /// How the one-at-a-time latency client waits for its answers; the throughput clients,
    /// as many as CPUs, always sleep (polling ones would take the server's CPUs).
    pub latency_wait: Wait,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub runs: usize,
    /// Client-side, request sent to answer read, in ms.
    pub request_p50_ms: f64,
    pub request_p99_ms: f64,
    /// The server's own figure for `session.run` (`server-timing: infer;dur=`), in ms.
    pub engine_p50_ms: f64,
    pub engine_p99_ms: f64,
    /// Median of (request - engine) per request: what HTTP, decoding, the engine's copies and
    /// encoding add.
    pub http_overhead_p50_ms: f64,
    pub http_overhead_p99_ms: f64,
    /// The same overhead against a server that only reads, waits the engine's p50 and
    /// answers (host only): what this host's loopback and wake-ups cost any server.
    pub http_floor_p50_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub clients: usize,
    pub requests: usize,
    pub per_second: f64,
}

impl Endpoint<'_> {
    /// A kept-alive connection that sends this endpoint's request.
    fn connect(&self, wait: Wait) -> Result<Connection> {
        let headers = [
            ("Content-Type", "application/octet-stream".to_string()),
            ("Inference-Header-Content-Length", self.json_len.to_string()),
        ];
        Connection::open(&self.url, &headers, self.request, wait)
            .with_context(|| format!("connecting for POST {}", self.url))
    }
}

/// One request; (whole request, engine's share).
fn send(connection: &mut Connection, endpoint: &Endpoint) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let (answer, body) = connection
        .send()
        .with_context(|| format!("POST {}", endpoint.url))?;
    let took = started.elapsed();
    if !(200..300).contains(&answer.status) {
        bail!(
            "POST {} answered {}: {}",
            endpoint.url,
            answer.status,
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    let engine_ms: f64 = answer
        .server_timing
        .as_deref()
        .and_then(|v| v.strip_prefix("infer;dur="))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{} sent no server-timing header", endpoint.url))?;
    Ok((took, Duration::from_secs_f64(engine_ms / 1e3)))
}

/// `warmup` untimed requests, then `runs` timed ones, one at a time.
pub fn latency(endpoint: &Endpoint, warmup: usize, runs: usize) -> Result<Latency> {
    let mut connection = endpoint.connect(endpoint.latency_wait)?;
    for _ in 0..warmup {
        send(&mut connection, endpoint)?;
    }
    let mut request = Vec::with_capacity(runs);
    let mut engine = Vec::with_capacity(runs);
    let mut overhead = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (took, engine_took) = send(&mut connection, endpoint)?;
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
        http_overhead_p99_ms: round3(percentile(&overhead, 99.0)),
        http_floor_p50_ms: None,
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
                    let mut connection = endpoint.connect(Wait::Block)?;
                    for _ in 0..share {
                        send(&mut connection, endpoint)?;
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
