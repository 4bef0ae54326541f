//! What a load test counted and measured, and what of it is a problem.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;

/// Error messages kept word for word; the rest are only counted.
const KEPT_ERRORS: usize = 5;
const MIB: f64 = 1024.0 * 1024.0;

/// One client's counts, merged into the report's at the end.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    good: usize,
    latencies: Vec<Duration>,
    hostile: BTreeMap<&'static str, usize>,
    errors: usize,
    first_errors: Vec<String>,
}

impl Tally {
    pub fn good(&mut self, took: Duration, outcome: Result<()>) {
        self.good += 1;
        match outcome {
            Ok(()) => self.latencies.push(took),
            Err(e) => self.error(format!("good request: {e:#}")),
        }
    }

    pub fn hostile(&mut self, kind: &'static str, outcome: Result<()>) {
        *self.hostile.entry(kind).or_default() += 1;
        if let Err(e) = outcome {
            self.error(format!("{kind} request: {e:#}"));
        }
    }

    pub fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_errors.len() < KEPT_ERRORS {
            self.first_errors.push(what);
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.good += other.good;
        self.latencies.extend(other.latencies);
        for (kind, n) in other.hostile {
            *self.hostile.entry(kind).or_default() += n;
        }
        self.errors += other.errors;
        for e in other.first_errors {
            if self.first_errors.len() < KEPT_ERRORS {
                self.first_errors.push(e);
            }
        }
    }
}

/// The server's resident memory over the run: before, the peaks of the first and second half
/// (by requests done) and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryTrend {
    pub start: u64,
    pub first_half_peak: u64,
    pub second_half_peak: u64,
    pub end: u64,
    /// Readings taken under load.
    pub samples: usize,
}

impl MemoryTrend {
    pub fn new(start: u64, samples: &[(usize, u64)], end: u64, requests: usize) -> MemoryTrend {
        let half = requests / 2;
        let peak = |in_half: &dyn Fn(usize) -> bool| {
            samples
                .iter()
                .filter(|(done, _)| in_half(*done))
                .map(|(_, bytes)| *bytes)
                .max()
        };
        MemoryTrend {
            start,
            first_half_peak: peak(&|done| done < half).unwrap_or(0).max(start),
            second_half_peak: peak(&|done| done >= half).unwrap_or(0).max(end),
            end,
            samples: samples.len(),
        }
    }

    /// How far the second half may rise above the first: allocators settle (arenas, caches)
    /// while a steady load runs, a leak keeps climbing with every request.
    pub fn allowed_growth(&self) -> u64 {
        (self.first_half_peak / 10).max(2 << 20)
    }

    pub fn plateaus(&self) -> bool {
        self.second_half_peak <= self.first_half_peak + self.allowed_growth()
    }

    pub fn peak(&self) -> u64 {
        self.first_half_peak.max(self.second_half_peak)
    }
}

/// The figures of one load test.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub clients: usize,
    /// Requests done, hostile ones included.
    pub requests: usize,
    pub good: usize,
    /// Hostile requests by kind.
    pub hostile: BTreeMap<&'static str, usize>,
    pub errors: usize,
    pub first_errors: Vec<String>,
    pub elapsed: Duration,
    /// Latency of the good requests that were answered correctly.
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub memory: MemoryTrend,
}

impl LoadReport {
    pub(crate) fn new(
        clients: usize,
        mut tally: Tally,
        elapsed: Duration,
        memory: MemoryTrend,
    ) -> LoadReport {
        tally.latencies.sort();
        let at = |p: f64| percentile(&tally.latencies, p);
        LoadReport {
            clients,
            requests: tally.good + tally.hostile.values().sum::<usize>(),
            good: tally.good,
            p50: at(0.50),
            p99: at(0.99),
            max: tally.latencies.last().copied().unwrap_or_default(),
            hostile: tally.hostile,
            errors: tally.errors,
            first_errors: tally.first_errors,
            elapsed,
            memory,
        }
    }

    /// Requests done per second, hostile ones included.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Everything that makes the test fail: any error, memory that keeps growing.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.errors > 0 {
            problems.push(format!(
                "{} errors under load, first: {}",
                self.errors,
                self.first_errors.join("; ")
            ));
        }
        if !self.memory.plateaus() {
            let m = &self.memory;
            problems.push(format!(
                "resident memory kept growing: peak {:.1} MiB in the second half against {:.1} MiB in the first (allowed +{:.1} MiB)",
                m.second_half_peak as f64 / MIB,
                m.first_half_peak as f64 / MIB,
                m.allowed_growth() as f64 / MIB
            ));
        }
        problems
    }

    /// One line of figures.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .hostile
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let m = &self.memory;
        format!(
            "{} requests from {} clients in {:.2} s ({:.0} req/s): {} good, {} hostile ({}); {} errors; good latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; RSS start {:.1} MiB, peak {:.1} MiB (first half {:.1}, second half {:.1}, {} readings), end {:.1} MiB",
            self.requests,
            self.clients,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.good,
            self.requests - self.good,
            kinds.join(", "),
            self.errors,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            m.start as f64 / MIB,
            m.peak() as f64 / MIB,
            m.first_half_peak as f64 / MIB,
            m.second_half_peak as f64 / MIB,
            m.samples,
            m.end as f64 / MIB,
        )
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&v[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn memory_that_levels_off_plateaus_and_a_climb_does_not() {
        let level: Vec<(usize, u64)> = (0..100)
            .map(|i| (i * 10, 20 * MB + (i as u64 % 3) * 4096))
            .collect();
        let trend = MemoryTrend::new(18 * MB, &level, 20 * MB, 1000);
        assert!(trend.plateaus(), "{trend:?}");
        assert_eq!(trend.samples, 100);
        // 80 KiB more per reading: about 4 MiB more over the second half.
        let leak: Vec<(usize, u64)> = (0..100)
            .map(|i| (i * 10, 20 * MB + i as u64 * 80 * 1024))
            .collect();
        let trend = MemoryTrend::new(18 * MB, &leak, 28 * MB, 1000);
        assert!(!trend.plateaus(), "{trend:?}");
    }

    #[test]
    fn start_and_end_count_when_a_half_has_no_reading() {
        let trend = MemoryTrend::new(10 * MB, &[], 11 * MB, 10);
        assert_eq!(
            (trend.first_half_peak, trend.second_half_peak),
            (10 * MB, 11 * MB)
        );
        assert!(trend.plateaus());
    }

    #[test]
    fn errors_and_counts_add_up_across_clients() {
        let mut a = Tally::default();
        a.good(Duration::from_millis(2), Ok(()));
        a.hostile("oversized", Ok(()));
        let mut b = Tally::default();
        b.good(
            Duration::from_millis(4),
            Err(anyhow::anyhow!("wrong answer")),
        );
        b.hostile("oversized", Err(anyhow::anyhow!("answered 200")));
        a.merge(b);
        let memory = MemoryTrend::new(MB, &[], MB, 4);
        let report = LoadReport::new(2, a, Duration::from_secs(1), memory);
        assert_eq!((report.requests, report.good, report.errors), (4, 2, 2));
        assert_eq!(report.hostile["oversized"], 2);
        assert_eq!(report.p50, Duration::from_millis(2));
        let problems = report.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("wrong answer") && problems[0].contains("answered 200"));
        assert!(report.summary().contains("4 requests from 2 clients"));
    }
}
