//! The server's resident memory, read through its API (`process_resident_memory_bytes` on
//! `/metrics`), so a device is measured the same way as a host process.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::Target;

const GAUGE: &str = "process_resident_memory_bytes";
/// edge-runtime's high-water mark of the same (the kernel's `VmHWM`).
const PEAK_GAUGE: &str = "edge_resident_memory_peak_bytes";
const INTERVAL: Duration = Duration::from_millis(100);

/// One reading of the gauge.
pub fn resident(agent: &ureq::Agent, target: &Target) -> Result<u64> {
    let url = format!("{}/metrics", target.base);
    parse_gauge(&metrics(agent, target)?, GAUGE).with_context(|| {
        format!("{url} has no {GAUGE} gauge (an edge-runtime older than the load test?)")
    })
}

/// The largest resident memory since the server started, if it reports it.
pub fn peak(agent: &ureq::Agent, target: &Target) -> Result<Option<u64>> {
    Ok(parse_gauge(&metrics(agent, target)?, PEAK_GAUGE))
}

fn metrics(agent: &ureq::Agent, target: &Target) -> Result<String> {
    let url = format!("{}/metrics", target.base);
    let mut request = agent.get(&url);
    if let Some(token) = &target.token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string()?;
    if status != 200 {
        anyhow::bail!("GET {url} answered {status}: {text}");
    }
    Ok(text)
}

fn parse_gauge(metrics: &str, gauge: &str) -> Option<u64> {
    let value = metrics
        .lines()
        .find_map(|l| l.strip_prefix(gauge)?.strip_prefix(' '))?;
    value.trim().parse::<f64>().ok().map(|v| v as u64)
}

/// Reads the gauge every [`INTERVAL`] until `stop`: (requests done by then, bytes) pairs, and
/// the readings that failed.
pub fn sample(
    target: &Target,
    done: &AtomicUsize,
    stop: &AtomicBool,
) -> (Vec<(usize, u64)>, Vec<String>) {
    let agent = crate::agent();
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let at = done.load(Ordering::Relaxed);
        match resident(&agent, target) {
            Ok(bytes) => samples.push((at, bytes)),
            Err(e) => errors.push(format!("memory reading under load: {e:#}")),
        }
        std::thread::sleep(INTERVAL);
    }
    (samples, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_gauge_among_other_metrics() {
        let text = "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
# TYPE process_resident_memory_bytes gauge\n# UNIT process_resident_memory_bytes bytes\n\
process_resident_memory_bytes 12640256\nedge_infer_requests_total{model=\"m\"} 3\n# EOF\n";
        assert_eq!(parse_gauge(text, GAUGE), Some(12_640_256));
        assert_eq!(parse_gauge(text, PEAK_GAUGE), None);
        assert_eq!(parse_gauge("edge_infer_requests_total 3\n", GAUGE), None);
        assert_eq!(
            parse_gauge("edge_resident_memory_peak_bytes 2e7\n", PEAK_GAUGE),
            Some(20_000_000)
        );
    }
}
