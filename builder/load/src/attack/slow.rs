//! Slow clients: connections that trickle a request one byte at a time, half of them their
//! headers, half their body, each reconnecting as soon as the server cuts it off. A server
//! without header and body timeouts keeps them all; one that takes its concurrency slot before
//! the body has arrived stops answering anyone else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::normal::{NormalClient, NormalReport};
use super::Endings;
use crate::{raw, Good, Target};

/// How many slow clients, for how long, how slow, and the normal client's budget.
#[derive(Debug, Clone)]
pub struct SlowAttack {
    /// Connections trickling at once.
    pub clients: usize,
    /// How long the attack lasts.
    pub duration: Duration,
    /// Pause between two trickled bytes.
    pub pause: Duration,
    /// Every answer the normal client gets must come within this.
    pub budget: Duration,
    pub tolerance: f64,
}

/// What the slow clients and the normal client saw.
#[derive(Debug, Clone)]
pub struct SlowReport {
    pub attack: SlowAttack,
    /// How the slow connections ended (`"408"`, `"closed"`, `"held to the end"`, ...).
    pub endings: Endings,
    /// The longest the server kept one slow connection before cutting it off (those held to
    /// the end of the attack included).
    pub longest_hold: Duration,
    pub normal: NormalReport,
}

impl SlowReport {
    pub fn summary(&self) -> String {
        format!(
            "{} slow clients for {:.0} s, one byte per {:.1} s: {} connections ({}), held at most {:.1} s; normal client: {}",
            self.attack.clients,
            self.attack.duration.as_secs_f64(),
            self.attack.pause.as_secs_f64(),
            self.endings.total(),
            self.endings,
            self.longest_hold.as_secs_f64(),
            self.normal.summary(self.attack.budget)
        )
    }

    /// The normal client missing an answer, or a slow connection answered anything but 408
    /// (a trickled request must not be served, nor crash anything).
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .normal
            .problems(self.attack.budget)
            .into_iter()
            .collect();
        let others = self
            .endings
            .other_than(&["408", "closed", "held to the end"]);
        if !others.is_empty() {
            problems.push(format!(
                "slow connections ended otherwise than 408 or closed: {others:?}"
            ));
        }
        problems
    }
}

#[derive(Clone, Copy)]
enum Trickle {
    Head,
    Body,
}

/// Runs the attack against `target` with `good` as the trickled (and the normal) request.
pub fn slow_clients(target: &Target, good: &Good, attack: &SlowAttack) -> Result<SlowReport> {
    let authority = target.authority()?.to_string();
    let path = format!("/v2/models/{}/infer", target.model);
    let head = raw::post_head(&authority, &path, good.body.len(), target.token.as_deref());
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + attack.duration;
    let normal = NormalClient {
        target,
        good,
        tolerance: attack.tolerance,
        budget: attack.budget,
    };
    let (endings, longest_hold, normal) = std::thread::scope(|scope| {
        let slow: Vec<_> = (0..attack.clients)
            .map(|i| {
                let mode = if i % 2 == 0 {
                    Trickle::Head
                } else {
                    Trickle::Body
                };
                let (head, body, authority) = (&head, &good.body, &authority);
                scope.spawn(move || {
                    trickle_until(deadline, authority, mode, head, body, attack.pause)
                })
            })
            .collect();
        // Let the slow clients take their connections first.
        std::thread::sleep(attack.pause.min(Duration::from_secs(2)));
        let asker = scope.spawn(|| normal.keep_asking(&stop));
        let mut endings = Endings::default();
        let mut longest = Duration::ZERO;
        for client in slow {
            let (e, hold) = client.join().expect("a slow client panicked");
            endings.merge(e);
            longest = longest.max(hold);
        }
        stop.store(true, Ordering::Relaxed);
        (
            endings,
            longest,
            asker.join().expect("the normal client panicked"),
        )
    });
    Ok(SlowReport {
        attack: attack.clone(),
        endings,
        longest_hold,
        normal,
    })
}

/// One slow client: trickles a request, and once the server cuts it off, the next, until
/// `deadline`. How each connection ended, and the longest one lasted.
fn trickle_until(
    deadline: Instant,
    authority: &str,
    mode: Trickle,
    head: &[u8],
    body: &[u8],
    pause: Duration,
) -> (Endings, Duration) {
    let mut endings = Endings::default();
    let mut longest = Duration::ZERO;
    while Instant::now() < deadline {
        let opened = Instant::now();
        let ending = match raw::connect(authority) {
            Ok(stream) => {
                let (at_once, trickled): (&[u8], Vec<u8>) = match mode {
                    Trickle::Head => (&[], [head, body].concat()),
                    Trickle::Body => (head, body.to_vec()),
                };
                raw::trickle(stream, at_once, &trickled, pause, deadline).label()
            }
            Err(e) => format!("cannot connect: {e:#}"),
        };
        longest = longest.max(opened.elapsed());
        endings.add(ending);
    }
    (endings, longest)
}
