//! A flood of bodies: clients that each stream a body of the largest size the server takes,
//! an inference request whose data is JSON zeros (`[0,0,0,...]`), as fast as the server reads
//! it, again and again. A server that parses a body into a tree before checking it against the
//! model holds many times the body per client; one that decodes as the bytes arrive and stops
//! at the first element too many holds next to nothing.

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::normal::{NormalClient, NormalReport};
use super::Endings;
use crate::{memory, raw, Good, Target};

const MIB: f64 = 1024.0 * 1024.0;
/// Bytes written per `write` call.
const CHUNK: usize = 64 << 10;

/// How many clients, how big a body, for how long, and the normal client's budget.
#[derive(Debug, Clone)]
pub struct FloodAttack {
    pub clients: usize,
    /// The size of each body: the server's `max_body`.
    pub body_bytes: usize,
    /// Each client sends bodies until this has passed (at least one each).
    pub duration: Duration,
    pub budget: Duration,
    pub tolerance: f64,
}

/// What the flood did to the server's memory, and what the normal client saw.
#[derive(Debug, Clone)]
pub struct FloodReport {
    pub attack: FloodAttack,
    /// `process_resident_memory_bytes` before the flood, and after.
    pub rest_rss: u64,
    /// The largest resident memory seen: the server's own high-water mark since it started
    /// (`edge_resident_memory_peak_bytes`), or, from a server without it, the largest reading
    /// taken during the flood.
    pub peak_rss: u64,
    /// Whether `peak_rss` is the server's high-water mark (exact) or a sampled reading.
    pub peak_exact: bool,
    pub end_rss: u64,
    pub readings: usize,
    /// Readings that failed (the gauge did not answer).
    pub reading_errors: Vec<String>,
    /// How each body ended: the server's status (`"400"`), or `"closed"`.
    pub endings: Endings,
    pub elapsed: Duration,
    pub normal: NormalReport,
}

impl FloodReport {
    pub fn summary(&self) -> String {
        format!(
            "{} clients streaming {:.2} MiB bodies of JSON zeros for {:.1} s: {} bodies ({}); RSS at rest {:.1} MiB, peak {:.1} MiB ({}; {} readings), after {:.1} MiB; normal client: {}",
            self.attack.clients,
            self.attack.body_bytes as f64 / MIB,
            self.elapsed.as_secs_f64(),
            self.endings.total(),
            self.endings,
            self.rest_rss as f64 / MIB,
            self.peak_rss as f64 / MIB,
            if self.peak_exact { "the server's high-water mark" } else { "largest reading" },
            self.readings,
            self.end_rss as f64 / MIB,
            self.normal.summary(self.attack.budget)
        )
    }

    /// The normal client missing an answer, a body answered 2xx or 5xx, a peak over
    /// `rss_limit` bytes, or no memory reading at all.
    pub fn problems(&self, rss_limit: u64) -> Vec<String> {
        let mut problems: Vec<String> = self
            .normal
            .problems(self.attack.budget)
            .into_iter()
            .collect();
        if self.peak_rss > rss_limit {
            problems.push(format!(
                "resident memory peaked at {:.1} MiB, over the bound of {:.1} MiB",
                self.peak_rss as f64 / MIB,
                rss_limit as f64 / MIB
            ));
        }
        if self.readings == 0 {
            problems.push(format!(
                "no memory reading during the flood: {}",
                self.reading_errors.join("; ")
            ));
        }
        let others = self.endings.other_than(&["400", "413", "closed"]);
        if !others.is_empty() {
            problems.push(format!(
                "bodies of zeros ended otherwise than 400, 413 or closed: {others:?}"
            ));
        }
        problems
    }
}

/// Runs the flood against `target`; `good` names the input the zeros are for and is what the
/// normal client asks.
pub fn flood(target: &Target, good: &Good, attack: &FloodAttack) -> Result<FloodReport> {
    let authority = target.authority()?.to_string();
    let (prefix, suffix) = zeros_frame(&good.body)?;
    let path = format!("/v2/models/{}/infer", target.model);
    let head = raw::post_head(
        &authority,
        &path,
        attack.body_bytes,
        target.token.as_deref(),
    );
    let rest_rss = memory::resident(&crate::agent(), target)?;
    let normal = NormalClient {
        target,
        good,
        tolerance: attack.tolerance,
        budget: attack.budget,
    };
    let stop = AtomicBool::new(false);
    let unused = AtomicUsize::new(0);
    let started = Instant::now();
    let deadline = started + attack.duration;
    let (endings, normal, (samples, reading_errors)) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| memory::sample(target, &unused, &stop));
        let asker = scope.spawn(|| normal.keep_asking(&stop));
        let flooders: Vec<_> = (0..attack.clients)
            .map(|_| {
                let (authority, head, prefix, suffix) = (&authority, &head, &prefix, &suffix);
                scope.spawn(move || {
                    let mut endings = Endings::default();
                    loop {
                        endings.add(send_zeros(
                            authority,
                            head,
                            prefix,
                            suffix,
                            attack.body_bytes,
                        ));
                        if Instant::now() >= deadline {
                            return endings;
                        }
                    }
                })
            })
            .collect();
        let mut endings = Endings::default();
        for f in flooders {
            endings.merge(f.join().expect("a flooding client panicked"));
        }
        stop.store(true, Ordering::Relaxed);
        (
            endings,
            asker.join().expect("the normal client panicked"),
            sampler.join().expect("the memory sampler panicked"),
        )
    });
    let elapsed = started.elapsed();
    let end_rss = memory::resident(&crate::agent(), target)?;
    let sampled = samples.iter().map(|(_, b)| *b).max().unwrap_or(0);
    let high_water = memory::peak(&crate::agent(), target)?;
    Ok(FloodReport {
        attack: attack.clone(),
        rest_rss,
        peak_rss: high_water.unwrap_or(0).max(sampled),
        peak_exact: high_water.is_some(),
        end_rss,
        readings: samples.len(),
        reading_errors,
        endings,
        elapsed,
        normal,
    })
}

/// `{"inputs":[{"name":..,"shape":..,"datatype":..,"data":[` and `]}]}` around the zeros, for
/// the first input of the good request.
fn zeros_frame(good: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let request: serde_json::Value =
        serde_json::from_slice(good).context("a good request is not JSON")?;
    let input = &request["inputs"][0];
    let head = serde_json::json!({
        "name": input["name"],
        "shape": input["shape"],
        "datatype": input["datatype"],
    })
    .to_string();
    let prefix = format!("{{\"inputs\":[{},\"data\":[", head.trim_end_matches('}'));
    Ok((prefix.into_bytes(), b"]}]}".to_vec()))
}

/// Sends one body of exactly `len` bytes, zeros between `prefix` and `suffix`, and reads the
/// answer. How it ended.
fn send_zeros(authority: &str, head: &[u8], prefix: &[u8], suffix: &[u8], len: usize) -> String {
    let mut stream = match raw::connect(authority) {
        Ok(s) => s,
        Err(e) => return format!("cannot connect: {e:#}"),
    };
    let mut body = ZeroBody::new(prefix, suffix, len);
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut writing = stream.write_all(head).is_ok();
    while writing && body.fill(&mut chunk) {
        writing = stream.write_all(&chunk).is_ok();
    }
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Err(e) if answer.is_empty() && e.kind() != ErrorKind::ConnectionReset => {
            return format!("no answer: {e}")
        }
        _ => {}
    }
    if answer.is_empty() {
        return "closed".into();
    }
    match raw::parse(&answer) {
        Ok(a) => a.status.to_string(),
        Err(e) => format!("{e:#}"),
    }
}

/// `prefix`, then `0,0,...,0` (a space where the length needs one), then `suffix`: `len`
/// bytes in all, made a chunk at a time.
struct ZeroBody<'a> {
    prefix: &'a [u8],
    suffix: &'a [u8],
    len: usize,
    at: usize,
}

impl<'a> ZeroBody<'a> {
    fn new(prefix: &'a [u8], suffix: &'a [u8], len: usize) -> Self {
        ZeroBody {
            prefix,
            suffix,
            len,
            at: 0,
        }
    }

    /// The byte at `i` of the body.
    fn byte(&self, i: usize) -> u8 {
        let zeros_end = self.len.saturating_sub(self.suffix.len());
        if i < self.prefix.len() {
            self.prefix[i]
        } else if i >= zeros_end {
            self.suffix[i - zeros_end]
        } else {
            let k = i - self.prefix.len();
            let zeros_len = zeros_end - self.prefix.len();
            // Even offsets are digits, odd ones commas; an even-length run ends in a space.
            match (k % 2, k + 1 == zeros_len) {
                (0, _) => b'0',
                (_, true) => b' ',
                _ => b',',
            }
        }
    }

    /// The next chunk into `out`; false once the whole body was made.
    fn fill(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        let end = (self.at + CHUNK).min(self.len);
        out.extend((self.at..end).map(|i| self.byte(i)));
        self.at = end;
        !out.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(prefix: &[u8], suffix: &[u8], len: usize) -> Vec<u8> {
        let mut body = ZeroBody::new(prefix, suffix, len);
        let (mut all, mut chunk) = (Vec::new(), Vec::new());
        while body.fill(&mut chunk) {
            all.extend_from_slice(&chunk);
        }
        all
    }

    #[test]
    fn zero_bodies_are_valid_json_of_the_exact_length() {
        let good = br#"{"inputs":[{"name":"x","shape":[1,16],"datatype":"FP32","data":[1,2]}]}"#;
        let (prefix, suffix) = zeros_frame(good).unwrap();
        for len in [200, 201, 200_000, 200_001] {
            let body = whole(&prefix, &suffix, len);
            assert_eq!(body.len(), len);
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let input = &json["inputs"][0];
            assert_eq!(input["name"], "x");
            assert_eq!(input["shape"], serde_json::json!([1, 16]));
            let data = input["data"].as_array().unwrap();
            assert!(data.len() > 10 && data.iter().all(|v| v == 0), "{len}");
        }
    }
}
