//! The start-up golden check: on a trial boot with `system.golden` set, the server answers
//! nothing until one model gave the golden answer, so init's READY (and with it the trial's
//! commit) means the new system really serves. Only on a trial: a committed system keeps
//! serving whatever its model answers since (a model update may change the answers).

use std::path::Path;

use edge_config::system::{SystemConfig, INBOX, STATE};

use crate::http::AppState;
use crate::repository::check::golden_inference;

/// `inbox/start-failure.txt`: why the last start failed its golden check, for init's rollback
/// reason.
pub const START_FAILURE: &str = "start-failure.txt";

/// Runs `system.golden` on `system.golden_model` (the first model when it names none). `None`
/// when there is nothing to check, else the outputs' description or why it failed.
pub fn golden_check(system: &SystemConfig, state: &AppState) -> Option<Result<String, String>> {
    let golden = system.golden.as_ref()?;
    let name = match &system.golden_model {
        Some(name) => name.clone(),
        None => {
            let mut names: Vec<&String> = state.models.keys().collect();
            names.sort();
            (*names.first()?).clone()
        }
    };
    Some(match state.models.get(&name) {
        None => Err(format!(
            "system.golden_model names '{name}', which this device does not serve"
        )),
        Some(model) => golden_inference(&model.load(), Some(golden))
            .map_err(|why| format!("model '{name}': {why}")),
    })
}

/// Whether this boot is a trial: `state.json` names a trial of the slot the kernel booted (of
/// either slot when the command line names none, as off the device).
pub fn on_trial(system: &SystemConfig) -> bool {
    let state = super::read_state(&Path::new(&system.state_dir).join(STATE));
    let Some(trial) = state.and_then(|s| s.trial) else {
        return false;
    };
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    super::running_slot(&cmdline).is_none_or(|slot| slot == trial.slot)
}

/// Writes `why` to `<state_dir>/inbox/start-failure.txt`; best effort, the exit status says it
/// anyway.
pub fn record_start_failure(system: &SystemConfig, why: &str) {
    let inbox = Path::new(&system.state_dir).join(INBOX);
    let _ = std::fs::create_dir_all(&inbox)
        .and_then(|()| std::fs::write(inbox.join(START_FAILURE), format!("{why}\n")));
}
