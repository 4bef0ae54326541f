//! `attack = { ... }` checks: the attacks edge-runtime's host test reproduces
//! (`edgeimg_load::attack`), here against the booted device through the forwarded port:
//! slow clients, then a flood of max_body-sized bodies of zeros, each while a normal client
//! keeps asking.

use std::time::Duration;

use anyhow::{bail, Result};
use edgeimg_load::attack::{self, FloodAttack, NormalClient, SlowAttack};

use super::load::{good_requests, target};
use super::InferClient;
use crate::recipe::{parse_size, AttackCheck, TestCase};

/// Pause between two trickled bytes.
const TRICKLE: Duration = Duration::from_secs(1);

/// Runs both attacks; the figures on success, the problems and figures on failure.
pub fn run_attack(
    device: &InferClient,
    reference: Option<&InferClient>,
    model: &str,
    case: &TestCase,
    check: &AttackCheck,
) -> Result<String> {
    let (good, source) = good_requests(device, reference, model, case, 1)?;
    let good = &good[0];
    let target = target(device, model);
    let budget = Duration::from_millis(check.budget_ms);
    let rss_limit = parse_size(&check.rss_limit).expect("validated");
    let rest = attack::at_rest(
        &NormalClient {
            target: &target,
            good,
            tolerance: case.tolerance(),
            budget,
        },
        5,
    );
    let slow = attack::slow_clients(
        &target,
        good,
        &SlowAttack {
            clients: check.slow_clients,
            duration: Duration::from_secs(check.seconds),
            pause: TRICKLE,
            budget,
            tolerance: case.tolerance(),
        },
    )?;
    let flood = attack::flood(
        &target,
        good,
        &FloodAttack {
            clients: check.flood_clients,
            body_bytes: device.max_body_bytes()?,
            duration: Duration::from_secs(check.seconds.div_ceil(2)),
            budget,
            tolerance: case.tolerance(),
        },
    )?;
    let figures = format!(
        "normal client at rest: {}; slow clients: {}; flood: {}; every answer = {source}",
        rest.summary(budget),
        slow.summary(),
        flood.summary()
    );
    let mut problems = slow.problems();
    problems.extend(flood.problems(rss_limit));
    problems.extend(rest.problems(budget));
    if slow.endings.count("408") == 0 {
        problems.push("no slow client was cut off with a 408: the device has no timeout".into());
    }
    if !problems.is_empty() {
        bail!("{}\n    figures: {figures}", problems.join("\n    "));
    }
    Ok(figures)
}
