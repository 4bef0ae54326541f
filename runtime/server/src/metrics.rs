//! Prometheus metrics for the inference path, served at `/metrics` in OpenMetrics text.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{text::encode, DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    /// Empty for requests naming no configured model (keeps label values bounded).
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    model: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

type Histograms = Family<ModelLabel, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<ModelLabel, Counter>,
    errors: Family<ErrorLabels, Counter>,
    refusals: Family<LimitLabel, Counter>,
    inference: Histograms,
    request: Histograms,
}

fn latency_histogram() -> Histogram {
    // 50 us .. ~1.6 s, doubling: covers tiny models on x86 to big ones on a Pi.
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

/// `process_resident_memory_bytes`, Prometheus' standard name, and
/// `edge_resident_memory_peak_bytes`, the kernel's high-water mark (`VmHWM`), read from /proc on
/// each scrape: how a device's memory under load is watched through the API, the peak exactly
/// even when no scrape landed on it.
#[derive(Debug)]
struct ResidentMemory;

impl Collector for ResidentMemory {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
            return Ok(());
        };
        for (name, help, value) in [
            (
                "process_resident_memory",
                "Resident memory size in bytes",
                resident_bytes(&status),
            ),
            (
                "edge_resident_memory_peak",
                "Largest resident memory size since the server started, in bytes",
                peak_resident_bytes(&status),
            ),
        ] {
            let Some(bytes) = value else { continue };
            let gauge = ConstGauge::new(bytes as i64);
            let metric =
                encoder.encode_descriptor(name, help, Some(&Unit::Bytes), gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
pub fn resident_bytes(status: &str) -> Option<u64> {
    status_bytes(status, "VmRSS:")
}

/// `VmHWM` (the peak of `VmRSS`) of a `/proc/<pid>/status` text, in bytes.
pub fn peak_resident_bytes(status: &str) -> Option<u64> {
    status_bytes(status, "VmHWM:")
}

fn status_bytes(status: &str, key: &str) -> Option<u64> {
    let kib = status.lines().find_map(|l| l.strip_prefix(key))?;
    let kib: u64 = kib.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ResidentMemory));
        let edge = registry.sub_registry_with_prefix("edge");
        let requests = Family::<ModelLabel, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let refusals = Family::<LimitLabel, Counter>::default();
        let inference: Histograms = Family::new_with_constructor(latency_histogram);
        let request: Histograms = Family::new_with_constructor(latency_histogram);
        edge.register(
            "infer_requests",
            "Inference requests received",
            requests.clone(),
        );
        edge.register(
            "infer_errors",
            "Inference requests answered with an error, by HTTP status",
            errors.clone(),
        );
        edge.register(
            "limit_refusals",
            "Connections and requests cut off by a limit (header_timeout, body_timeout, max_body, max_connections, response_unread)",
            refusals.clone(),
        );
        edge.register(
            "inference_duration_seconds",
            "Time spent in the model run (session.run) per request",
            inference.clone(),
        );
        edge.register(
            "request_duration_seconds",
            "Time from request to response for inference requests",
            request.clone(),
        );
        Metrics {
            registry,
            requests,
            errors,
            refusals,
            inference,
            request,
        }
    }
}

impl Metrics {
    /// Records one finished inference request.
    pub fn request(&self, model: &str, status: u16, elapsed: Duration) {
        let label = ModelLabel {
            model: model.to_string(),
        };
        self.requests.get_or_create(&label).inc();
        self.request
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
        if status >= 400 {
            self.errors
                .get_or_create(&ErrorLabels {
                    model: label.model,
                    status,
                })
                .inc();
        }
    }

    /// Counts a connection or request cut off by `limit`.
    pub fn refused(&self, limit: &'static str) {
        self.refusals.get_or_create(&LimitLabel { limit }).inc();
    }

    pub fn inference(&self, model: &str, elapsed: Duration) {
        self.inference
            .get_or_create(&ModelLabel {
                model: model.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histograms() {
        let m = Metrics::default();
        m.request("cls", 200, Duration::from_millis(2));
        m.request("", 404, Duration::from_micros(80));
        m.inference("cls", Duration::from_millis(1));
        m.refused("header_timeout");
        let text = m.render();
        assert!(
            text.contains("edge_limit_refusals_total{limit=\"header_timeout\"} 1"),
            "{text}"
        );
        assert!(text.contains("edge_resident_memory_peak_bytes "), "{text}");
        assert!(
            text.contains("edge_infer_requests_total{model=\"cls\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("edge_infer_errors_total{model=\"\",status=\"404\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("edge_inference_duration_seconds_count{model=\"cls\"} 1"),
            "{text}"
        );
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .unwrap_or_else(|| panic!("no resident memory gauge:\n{text}"));
        // This test process holds at least its own code and heap: more than a megabyte.
        assert!(rss.parse::<u64>().unwrap() > 1 << 20, "{rss}");
    }

    #[test]
    fn resident_memory_comes_from_vmrss() {
        let status = "Name:\tedge-runtime\nVmHWM:\t   20000 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(resident_bytes(status), Some(12345 * 1024));
        assert_eq!(peak_resident_bytes(status), Some(20000 * 1024));
        assert_eq!(resident_bytes("Name:\tx\n"), None);
    }
}
