//! The start-up golden check: with `system.golden` set the server answers nothing until one
//! model gave the golden answer, so init's READY (and with it a trial boot's commit) means the
//! new system really serves.

use std::path::Path;

use edge_config::system::{SystemConfig, INBOX};

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

/// Writes `why` to `<state_dir>/inbox/start-failure.txt`; best effort, the exit status says it
/// anyway.
pub fn record_start_failure(system: &SystemConfig, why: &str) {
    let inbox = Path::new(&system.state_dir).join(INBOX);
    let _ = std::fs::create_dir_all(&inbox)
        .and_then(|()| std::fs::write(inbox.join(START_FAILURE), format!("{why}\n")));
}
