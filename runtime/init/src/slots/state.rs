//! What a boot does about the slots, decided from `state.json` alone (pure, so every case is
//! a unit test).

use edge_config::system::{Attempt, Installing, Outcome, SlotState, Trial};

/// What to do at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Serve; write `write` first when the state changed.
    Serve { write: Option<SlotState> },
    /// Write `state` (the trial's boot counted), then serve as the trial.
    Trial { state: SlotState },
    /// Write `state`, switch `config.txt` to `state.committed`, reboot.
    RollBack { state: SlotState },
    /// An install the power cut short: write `state` (recorded as rolled back), delete the
    /// staged artifact (never installed again by itself), serve.
    Abandon { state: SlotState },
}

/// The decision for a boot of `running_slot` (which holds `running_version`), given the state
/// the last boot left (`None` on a fresh card).
pub fn decide(state: Option<&SlotState>, running_slot: &str, running_version: &str) -> Action {
    let Some(state) = state else {
        return Action::Serve {
            write: Some(SlotState {
                committed: running_slot.into(),
                committed_version: running_version.into(),
                installing: None,
                trial: None,
                last_attempt: None,
            }),
        };
    };
    if let Some(Installing { slot, version }) = &state.installing {
        // Resuming could loop on an artifact that kills the device mid-write; the old slot
        // serves, and whoever sent the update sees why and may send it again.
        return Action::Abandon {
            state: SlotState {
                installing: None,
                ..rolled_back(
                    state,
                    version,
                    format!(
                        "the install of version {version} into slot {slot} was cut short (power lost while it was written); slot {slot} is not used, send the update again"
                    ),
                )
            },
        };
    }
    match &state.trial {
        Some(trial) if trial.slot == running_slot && trial.boots == 0 => Action::Trial {
            state: SlotState {
                trial: Some(Trial {
                    boots: 1,
                    ..trial.clone()
                }),
                ..state.clone()
            },
        },
        Some(trial) if trial.slot == running_slot => Action::RollBack {
            state: rolled_back(
                state,
                &trial.version,
                format!(
                    "the trial boot of version {} did not commit: it crashed, hung or lost power",
                    trial.version
                ),
            ),
        },
        Some(trial) => Action::Serve {
            write: Some(rolled_back(
                state,
                &trial.version,
                format!(
                    "version {} never booted: the firmware started slot {running_slot} instead of slot {} (the switch did not take or it fell back)",
                    trial.version, trial.slot
                ),
            )),
        },
        // Only a rollback cut short by a power loss leaves this: state.json already names the
        // committed slot, config.txt still the other.
        None if state.committed != running_slot => Action::RollBack {
            state: state.clone(),
        },
        None => Action::Serve { write: None },
    }
}

/// `state` with the trial of `version` ended as rolled back for `reason`.
pub fn rolled_back(state: &SlotState, version: &str, reason: String) -> SlotState {
    SlotState {
        trial: None,
        last_attempt: Some(Attempt {
            version: version.into(),
            outcome: Outcome::RolledBack,
            reason,
        }),
        ..state.clone()
    }
}

/// `state` with its trial made the committed slot.
pub fn committed(state: &SlotState) -> Option<SlotState> {
    let trial = state.trial.as_ref()?;
    Some(SlotState {
        committed: trial.slot.clone(),
        committed_version: trial.version.clone(),
        installing: None,
        trial: None,
        last_attempt: Some(Attempt {
            version: trial.version.clone(),
            outcome: Outcome::Committed,
            reason: String::new(),
        }),
    })
}

/// `state` while `version` is written into `slot`.
pub fn installing(state: &SlotState, slot: &str, version: &str) -> SlotState {
    SlotState {
        installing: Some(Installing {
            slot: slot.into(),
            version: version.into(),
        }),
        ..state.clone()
    }
}

/// `state` with a trial of `version` in `slot` about to boot for the first time.
pub fn with_trial(state: &SlotState, slot: &str, version: &str) -> SlotState {
    SlotState {
        installing: None,
        trial: Some(Trial {
            slot: slot.into(),
            version: version.into(),
            boots: 0,
        }),
        ..state.clone()
    }
}

/// `state` with an install of `version` refused for `reason` (nothing was switched).
pub fn refused(state: &SlotState, version: &str, reason: String) -> SlotState {
    SlotState {
        installing: None,
        last_attempt: Some(Attempt {
            version: version.into(),
            outcome: Outcome::Refused,
            reason,
        }),
        ..state.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_a() -> SlotState {
        SlotState {
            committed: "a".into(),
            committed_version: "1".into(),
            installing: None,
            trial: None,
            last_attempt: None,
        }
    }

    fn trial_b(boots: u32) -> SlotState {
        SlotState {
            trial: Some(Trial {
                slot: "b".into(),
                version: "2".into(),
                boots,
            }),
            ..on_a()
        }
    }

    #[test]
    fn a_fresh_card_commits_what_it_runs() {
        assert_eq!(
            decide(None, "a", "1"),
            Action::Serve {
                write: Some(on_a())
            }
        );
    }

    #[test]
    fn a_committed_boot_changes_nothing() {
        assert_eq!(
            decide(Some(&on_a()), "a", "1"),
            Action::Serve { write: None }
        );
    }

    #[test]
    fn the_first_trial_boot_is_counted() {
        assert_eq!(
            decide(Some(&trial_b(0)), "b", "2"),
            Action::Trial { state: trial_b(1) }
        );
    }

    #[test]
    fn a_second_trial_boot_rolls_back() {
        let Action::RollBack { state } = decide(Some(&trial_b(1)), "b", "2") else {
            panic!("expected a rollback")
        };
        assert_eq!(state.committed, "a");
        assert_eq!(state.trial, None);
        let attempt = state.last_attempt.unwrap();
        assert_eq!(attempt.outcome, Outcome::RolledBack);
        assert_eq!(attempt.version, "2");
        assert!(
            attempt.reason.contains("did not commit"),
            "{}",
            attempt.reason
        );
    }

    #[test]
    fn a_trial_that_never_booted_is_recorded_and_cleared() {
        let Action::Serve { write: Some(state) } = decide(Some(&trial_b(0)), "a", "1") else {
            panic!("expected to serve")
        };
        assert_eq!(state.trial, None);
        assert_eq!(state.committed, "a");
        let attempt = state.last_attempt.unwrap();
        assert_eq!(attempt.outcome, Outcome::RolledBack);
        assert!(
            attempt.reason.starts_with("version 2 never booted"),
            "{}",
            attempt.reason
        );
    }

    #[test]
    fn an_install_cut_short_is_abandoned_not_resumed() {
        let cut = installing(&on_a(), "b", "4");
        let Action::Abandon { state } = decide(Some(&cut), "a", "1") else {
            panic!("expected the install abandoned")
        };
        assert_eq!(state.installing, None);
        assert_eq!(state.committed, "a");
        let attempt = state.last_attempt.unwrap();
        assert_eq!(
            (attempt.version.as_str(), attempt.outcome),
            ("4", Outcome::RolledBack)
        );
        assert!(attempt.reason.contains("cut short"), "{}", attempt.reason);
        // Written, it leaves nothing that would install or roll back again.
        assert_eq!(with_trial(&cut, "b", "4").installing, None);
    }

    #[test]
    fn an_interrupted_rollback_is_finished() {
        let state = rolled_back(&trial_b(1), "2", "why".into());
        assert_eq!(
            decide(Some(&state), "b", "2"),
            Action::RollBack {
                state: state.clone()
            }
        );
    }

    #[test]
    fn a_commit_makes_the_trial_slot_committed() {
        let state = committed(&trial_b(1)).unwrap();
        assert_eq!(
            (state.committed.as_str(), state.committed_version.as_str()),
            ("b", "2")
        );
        assert_eq!(state.trial, None);
        assert_eq!(state.last_attempt.unwrap().outcome, Outcome::Committed);
        assert_eq!(committed(&on_a()), None);
        assert_eq!(
            decide(Some(&committed(&trial_b(1)).unwrap()), "b", "2"),
            Action::Serve { write: None }
        );
    }
}
