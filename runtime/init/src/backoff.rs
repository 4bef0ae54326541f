//! How long to wait before restarting a server that died.

use std::time::Duration;

/// Exponential backoff: `initial`, doubling up to `max`; a run that lasted `stable_after`
/// counts as healthy and starts the sequence over.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    stable_after: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(
            Duration::from_millis(200),
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, stable_after: Duration) -> Self {
        Backoff {
            initial,
            max,
            stable_after,
            failures: 0,
        }
    }

    /// The delay before the next start, given how long the last run lasted.
    pub fn after_exit(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.stable_after {
            self.failures = 0;
        }
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.failures = self.failures.saturating_add(1);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Backoff {
        Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(2),
            Duration::from_secs(10),
        )
    }

    #[test]
    fn doubles_until_the_cap() {
        let mut backoff = quick();
        let short = Duration::from_millis(50);
        let delays: Vec<u128> = (0..7)
            .map(|_| backoff.after_exit(short).as_millis())
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn a_long_run_resets_the_sequence() {
        let mut backoff = quick();
        backoff.after_exit(Duration::ZERO);
        backoff.after_exit(Duration::ZERO);
        assert_eq!(backoff.after_exit(Duration::from_secs(11)).as_millis(), 100);
        assert_eq!(backoff.after_exit(Duration::ZERO).as_millis(), 200);
    }

    #[test]
    fn never_overflows() {
        let mut backoff = quick();
        for _ in 0..200 {
            assert!(backoff.after_exit(Duration::ZERO) <= Duration::from_secs(2));
        }
    }
}
