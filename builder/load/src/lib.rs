//! A bounded load test against an Open Inference Protocol v2 endpoint: a host `edge-runtime`
//! or a device behind QEMU's forwarded port. Many concurrent clients send good requests with
//! hostile ones interleaved (garbage JSON, wrong shapes, unknown models, oversized bodies,
//! bytes that are not HTTP, slow and aborted connections). Every good answer is compared with
//! a reference answer, every hostile request must get its 4xx, and the server's resident
//! memory, read through its own `/metrics` (`process_resident_memory_bytes`), must level off.
//!
//! One function, [`run`], serves both edge-runtime's host test and `edgeimg test`'s `load`
//! check, so the device is held to exactly what the host is.

pub mod attack;
mod hostile;
mod memory;
mod outputs;
mod raw;
mod report;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use outputs::{compare, flatten_json, parse_outputs, Outputs};
pub use report::{LoadReport, MemoryTrend};

use report::Tally;

/// No single request may take longer than this (a TCG guest under load is slow, not stuck).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An endpoint and the model on it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://HOST:PORT`.
    pub base: String,
    pub model: String,
    pub token: Option<String>,
}

impl Target {
    fn infer_url(&self) -> String {
        format!("{}/v2/models/{}/infer", self.base, self.model)
    }

    /// `HOST:PORT` of the base URL, for the requests sent over a raw socket.
    fn authority(&self) -> Result<&str> {
        self.base
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.contains('/'))
            .with_context(|| format!("{} is not an http://HOST:PORT address", self.base))
    }

    fn post(&self, agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        let mut request = agent.post(url).header("Content-Type", "application/json");
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.send(body).with_context(|| format!("POST {url}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_vec()
            .with_context(|| format!("reading the answer of POST {url}"))?;
        Ok((status, body))
    }

    /// One inference; the outputs by name.
    pub fn infer(&self, agent: &ureq::Agent, body: &[u8]) -> Result<Outputs> {
        let (status, answer) = self.post(agent, &self.infer_url(), body)?;
        if status != 200 {
            bail!(
                "answered {status}: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            );
        }
        parse_outputs(&answer)
    }
}

/// An HTTP client that hands back 4xx/5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into()
}

/// A good request and the answer it must get.
#[derive(Debug, Clone)]
pub struct Good {
    /// An inference request in JSON.
    pub body: Vec<u8>,
    pub expected: Outputs,
}

/// Asks `reference` (e.g. the host's ONNX Runtime) for the answer to each request body.
pub fn reference_answers(reference: &Target, bodies: Vec<Vec<u8>>) -> Result<Vec<Good>> {
    let agent = agent();
    bodies
        .into_iter()
        .map(|body| {
            let expected = reference
                .infer(&agent, &body)
                .with_context(|| format!("the reference at {}", reference.base))?;
            Ok(Good { body, expected })
        })
        .collect()
}

/// How much load, and of what kind.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Concurrent clients, each on its own connection.
    pub clients: usize,
    /// Requests in all, hostile ones included.
    pub requests: usize,
    /// Every Nth request is a hostile one (0: none).
    pub garbage_every: usize,
    /// The server's body limit: the oversized request sends one byte more.
    pub max_body_bytes: usize,
    /// Largest difference allowed between an answer and its reference.
    pub tolerance: f64,
    /// The whole run stops after this, finished or not (unfinished is an error).
    pub time_limit: Duration,
}

impl LoadSpec {
    fn check(&self, good: &[Good]) -> Result<()> {
        if self.clients == 0 || self.requests == 0 {
            bail!("a load test needs at least one client and one request");
        }
        if self.garbage_every == 1 {
            bail!("garbage_every = 1 would leave no good requests; use 0 (none) or 2 and up");
        }
        if good.is_empty() {
            bail!("a load test needs at least one good request");
        }
        Ok(())
    }

    fn is_hostile(&self, index: usize) -> bool {
        self.garbage_every > 0 && (index + 1).is_multiple_of(self.garbage_every)
    }
}

/// Runs the load against `target`, cycling through `good`; fails only when the test itself
/// cannot run (e.g. no memory gauge). What went wrong under load is in the report's
/// [`problems`](LoadReport::problems).
pub fn run(target: &Target, good: &[Good], spec: &LoadSpec) -> Result<LoadReport> {
    spec.check(good)?;
    target.authority()?;
    let kinds = hostile::kinds(target.token.is_some());
    let start_rss = memory::resident(&agent(), target)?;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let deadline = started + spec.time_limit;
    let (mut tally, samples) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| memory::sample(target, &done, &stop));
        let workers: Vec<_> = (0..spec.clients)
            .map(|_| {
                scope.spawn(|| {
                    let agent = agent();
                    let mut tally = Tally::default();
                    while Instant::now() < deadline {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= spec.requests {
                            break;
                        }
                        let good = &good[index % good.len()];
                        if spec.is_hostile(index) {
                            let kind = kinds[(index / spec.garbage_every) % kinds.len()];
                            let outcome = hostile::send(kind, &agent, target, good, spec);
                            tally.hostile(kind.name(), outcome);
                        } else {
                            let sent = Instant::now();
                            let outcome = target
                                .infer(&agent, &good.body)
                                .and_then(|got| compare(&got, &good.expected, spec.tolerance));
                            tally.good(sent.elapsed(), outcome);
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    tally
                })
            })
            .collect();
        let mut tally = Tally::default();
        for worker in workers {
            tally.merge(worker.join().expect("a load client panicked"));
        }
        stop.store(true, Ordering::Relaxed);
        let samples = sampler.join().expect("the memory sampler panicked");
        (tally, samples)
    });
    let elapsed = started.elapsed();
    let end_rss = memory::resident(&agent(), target);
    let completed = done.load(Ordering::Relaxed);
    if completed < spec.requests {
        tally.error(format!(
            "only {completed} of {} requests were done within the time limit of {:?}",
            spec.requests, spec.time_limit
        ));
    }
    let (samples, scrape_errors) = samples;
    for error in scrape_errors {
        tally.error(error);
    }
    let end_rss = match end_rss {
        Ok(bytes) => bytes,
        Err(e) => {
            tally.error(format!("after the load: {e:#}"));
            0
        }
    };
    let memory = MemoryTrend::new(start_rss, &samples, end_rss, spec.requests);
    Ok(LoadReport::new(spec.clients, tally, elapsed, memory))
}
