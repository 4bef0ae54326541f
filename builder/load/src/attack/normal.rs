//! The well-behaved client that keeps asking while an attack runs, one request at a time on a
//! kept-alive connection, as a monitoring script or a camera pipeline would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::ms;
use crate::outputs::compare;
use crate::{Good, Target};

/// Pause between two of its requests.
const INTERVAL: Duration = Duration::from_millis(100);
/// Error messages kept word for word.
const KEPT_ERRORS: usize = 3;

/// Who asks, what, and how long an answer may take.
#[derive(Debug, Clone)]
pub struct NormalClient<'a> {
    pub target: &'a Target,
    pub good: &'a Good,
    pub tolerance: f64,
    /// Every answer must come within this, right.
    pub budget: Duration,
}

/// What the normal client saw.
#[derive(Debug, Clone, Default)]
pub struct NormalReport {
    pub sent: usize,
    /// Right answers that came within the budget.
    pub within_budget: usize,
    /// Latencies of the right answers, sorted.
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub first_errors: Vec<String>,
}

impl NormalReport {
    pub fn p50(&self) -> Duration {
        self.latencies
            .get(self.latencies.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or_default()
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }

    /// `"3/3 within 2000 ms (p50 14.2 ms, max 18.0 ms)"`.
    pub fn summary(&self, budget: Duration) -> String {
        let mut text = format!(
            "{}/{} right within {:.0} ms (p50 {:.1} ms, max {:.1} ms)",
            self.within_budget,
            self.sent,
            ms(budget),
            ms(self.p50()),
            ms(self.max())
        );
        if self.errors > 0 {
            text.push_str(&format!(
                "; {} errors, first: {}",
                self.errors,
                self.first_errors.join("; ")
            ));
        }
        text
    }

    /// A request that went unanswered, wrong, or late.
    pub fn problems(&self, budget: Duration) -> Option<String> {
        (self.sent == 0 || self.within_budget < self.sent)
            .then(|| format!("the normal client got {}", self.summary(budget)))
    }

    fn record(&mut self, took: Duration, outcome: Result<()>, budget: Duration) {
        self.sent += 1;
        match outcome {
            Ok(()) => {
                // Late answers count in the latencies too: they are what the attack did.
                self.latencies.push(took);
                self.latencies.sort();
                if took <= budget {
                    self.within_budget += 1;
                } else {
                    self.error(format!("answered right but after {:.0} ms", ms(took)));
                }
            }
            Err(e) => self.error(format!("{e:#}")),
        }
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_errors.len() < KEPT_ERRORS {
            self.first_errors.push(what);
        }
    }
}

impl NormalClient<'_> {
    fn agent(&self) -> ureq::Agent {
        // Long enough to see how late an answer comes, short enough to keep asking.
        ureq::Agent::config_builder()
            .timeout_global(Some(self.budget + Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into()
    }

    fn ask(&self, agent: &ureq::Agent, report: &mut NormalReport) {
        let sent = Instant::now();
        let outcome = self
            .target
            .infer(agent, &self.good.body)
            .and_then(|got| compare(&got, &self.good.expected, self.tolerance));
        report.record(sent.elapsed(), outcome, self.budget);
    }

    /// Asks `count` times in a row, nothing else going on.
    pub fn at_rest(&self, count: usize) -> NormalReport {
        let agent = self.agent();
        let mut report = NormalReport::default();
        for _ in 0..count {
            self.ask(&agent, &mut report);
        }
        report
    }

    /// Asks until `stop`, pausing `INTERVAL` between answers.
    pub fn keep_asking(&self, stop: &AtomicBool) -> NormalReport {
        let agent = self.agent();
        let mut report = NormalReport::default();
        while !stop.load(Ordering::Relaxed) {
            self.ask(&agent, &mut report);
            std::thread::sleep(INTERVAL);
        }
        report
    }
}

/// The normal client's figures with nothing else going on.
pub fn at_rest(client: &NormalClient, count: usize) -> NormalReport {
    client.at_rest(count)
}
