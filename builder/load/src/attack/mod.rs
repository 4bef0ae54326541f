//! Attacks a neighbour on the LAN can mount with a handful of sockets, each run while a
//! well-behaved client keeps asking. The figures say whether the server stays up for everyone
//! else; the caller holds them to its bounds (the host test and `edgeimg test`'s `attack` check
//! state theirs).
//! - [`slow`]: many connections that trickle their headers or their body one byte at a time,
//!   for longer than any timeout the server should have;
//! - [`flood()`]: clients that stream bodies of the largest size the server takes, JSON zeros,
//!   as fast as they can, while the server's resident memory is sampled through `/metrics`.

pub mod flood;
pub mod slow;

mod normal;

pub use flood::{flood, FloodAttack, FloodReport};
pub use normal::{at_rest, NormalClient, NormalReport};
pub use slow::{slow_clients, SlowAttack, SlowReport};

use std::collections::BTreeMap;
use std::time::Duration;

/// How each attacking connection ended: an HTTP status, or what the socket did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endings {
    counts: BTreeMap<String, usize>,
}

impl Endings {
    pub fn add(&mut self, ending: impl Into<String>) {
        *self.counts.entry(ending.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: Endings) {
        for (ending, n) in other.counts {
            *self.counts.entry(ending).or_default() += n;
        }
    }

    /// How many connections ended this way (`"408"`, `"closed"`, ...).
    pub fn count(&self, ending: &str) -> usize {
        self.counts.get(ending).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// Every ending that is not one of `allowed`, with its count.
    pub fn other_than(&self, allowed: &[&str]) -> Vec<(String, usize)> {
        self.counts
            .iter()
            .filter(|(ending, _)| !allowed.contains(&ending.as_str()))
            .map(|(ending, n)| (ending.clone(), *n))
            .collect()
    }
}

impl std::fmt::Display for Endings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|(e, n)| format!("{n}x {e}"))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
