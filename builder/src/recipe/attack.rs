//! `attack = { ... }` checks: the attacks of a hostile neighbour (`edgeimg_load::attack`) run
//! against the booted device while a normal client keeps asking.

use serde::Deserialize;
use toml::Spanned;

use super::schema::parse_size;
use super::{LoadedRecipe, RecipeError};

/// `attack = { slow_clients = 32, flood_clients = 16, seconds = 30, budget_ms = 2000,
/// rss_limit = "96MiB" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackCheck {
    /// Connections trickling their headers or bodies a byte a second, reconnecting when cut
    /// off (8 x max_concurrency makes sure slots are not what they hold).
    pub slow_clients: usize,
    /// Clients streaming bodies of `max_body` bytes of JSON zeros as fast as they can.
    pub flood_clients: usize,
    /// How long the slow clients keep at it, in seconds (the flood takes half as long). Longer
    /// than the device's header and body timeouts, or nothing is tested.
    pub seconds: u64,
    /// Every answer the normal client gets during either attack must come within this.
    pub budget_ms: u64,
    /// The server's resident memory (its high-water mark) must stay under this, e.g. "96MiB".
    pub rss_limit: String,
}

/// Bounds that keep an attack a test of the device, not of the host running it.
const MAX_CLIENTS: usize = 256;
const MAX_SECONDS: u64 = 600;

pub(super) fn validate(
    loaded: &LoadedRecipe,
    attack: &Spanned<AttackCheck>,
) -> Result<(), RecipeError> {
    let a = attack.get_ref();
    let problem = if !(1..=MAX_CLIENTS).contains(&a.slow_clients) {
        Some(format!(
            "slow_clients = {} is out of range; use 1 to {MAX_CLIENTS}",
            a.slow_clients
        ))
    } else if !(1..=MAX_CLIENTS).contains(&a.flood_clients) {
        Some(format!(
            "flood_clients = {} is out of range; use 1 to {MAX_CLIENTS}",
            a.flood_clients
        ))
    } else if !(2..=MAX_SECONDS).contains(&a.seconds) {
        Some(format!(
            "seconds = {} is out of range; use 2 to {MAX_SECONDS}, more than the device's timeouts",
            a.seconds
        ))
    } else if a.budget_ms == 0 {
        Some("budget_ms = 0 leaves no time for any answer; give the normal client's budget, e.g. 2000".into())
    } else {
        parse_size(&a.rss_limit).err()
    };
    match problem {
        Some(msg) => Err(loaded.error_at(attack.span(), "test.attack", msg)),
        None => Ok(()),
    }
}
