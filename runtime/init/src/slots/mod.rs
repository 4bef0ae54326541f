//! A/B system updates, init's half: what each boot does about the slots, the trial boot's
//! commit or rollback, and installing what the server staged.
//!
//! `state.json` (in `system.state_dir` on the data partition) is written by init alone,
//! always whole (temporary file, fsync, rename, fsync of the folder; [`store`]). The
//! top-level `config.txt` is switched by one 512-byte write in place and an fsync
//! ([`switch`]). The running slot's root and folder are never written.
//!
//! # A power cut at each step
//! | cut during / after                          | next boot                                                                  |
//! |---------------------------------------------|----------------------------------------------------------------------------|
//! | the upload (`incoming.partial`)             | old slot; the server removes nothing yet, a new upload overwrites it        |
//! | writing the inactive root or slot folder    | old slot (config.txt untouched); `state.json` says `installing`: recorded as rolled back ("cut short"), `staged.update` deleted, never resumed |
//! | after `state.json` got the trial, before the switch | old slot; `decide` sees a trial of the other slot: recorded as rolled back ("never booted"), then installed again |
//! | the switch (one sector)                     | the old or the new config.txt, each a whole slot: as the row above or the row below |
//! | after the switch, before `staged.update` is deleted | the new slot on trial (boots 0 → 1); the leftover is deleted at the trial's start |
//! | the trial boot, before READY                | the new slot again with boots = 1: rolled back (state first, then the switch back, then reboot) |
//! | the rollback, between state and switch      | the trial slot with no trial in the state: `decide` finishes the rollback  |
//! | the commit (`state.json` replaced)          | the old state (trial, boots = 1): rolled back; or the new one: committed    |
//!
//! A 512-byte sector write is taken as atomic (SD cards and virtio disks write whole sectors).
//! Writing the inactive slot's folder goes through `fatfs`, which also writes the FAT and the
//! boot sector's dirty flag; the running slot's files keep their clusters and chains.

pub mod fat;
pub mod install;
pub mod partition;
pub mod state;
pub mod store;
pub mod switch;
pub mod trial;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edge_config::artifact::read_manifest;
use edge_config::signing::{self, VerifyingKey};
use edge_config::system::{
    other_slot, Outcome, SlotState, SystemConfig, INBOX, SLOTS, STAGED, STATE,
};

use crate::console;
use state::Action;
use trial::{TrialWatch, Verdict};

/// The server's account of a failed start (`edge_runtime::system::START_FAILURE`).
const START_FAILURE: &str = "start-failure.txt";

/// The slots of this boot, once `state.json` has been read and acted on.
pub struct Slots {
    system: SystemConfig,
    running: &'static str,
    state_dir: PathBuf,
    trial: Option<TrialWatch>,
    /// Where the partitions are when not found by PARTUUID (tests: files standing for them).
    devices: Option<partition::Devices>,
}

impl Slots {
    /// Acts on `state.json` for a boot of slot `running`; may not return (a rollback
    /// reboots). `None` when updates cannot work this boot (no slot on the command line, no
    /// data partition), said on the console.
    pub fn at_boot(
        system: &SystemConfig,
        running: Option<&str>,
        data_mount: Option<&Path>,
        server: (u32, u32),
    ) -> Option<Slots> {
        let Some(running) = running.and_then(|r| SLOTS.into_iter().find(|s| *s == r)) else {
            console::error(
                "update",
                "no edgeimg.slot=a|b on the kernel command line (the slot's cmdline.txt sets it): A/B updates are off this boot",
            );
            return None;
        };
        if data_mount.is_none() {
            console::error(
                "update",
                "the data partition is not mounted, so state.json cannot be kept: A/B updates are off this boot",
            );
            return None;
        }
        let slots = Slots {
            system: system.clone(),
            running,
            state_dir: PathBuf::from(&system.state_dir),
            trial: None,
            devices: None,
        };
        // The server stages uploads here; state.json beside it stays root's.
        crate::data::make_server_dir(slots.inbox().to_str()?, server);
        slots.after_boot(data_mount)
    }

    fn after_boot(mut self, data_mount: Option<&Path>) -> Option<Slots> {
        let found = store::load(&self.state_path()).unwrap_or_else(|e| {
            console::error(
                "update:state",
                format!("{e}; starting afresh from the running slot"),
            );
            None
        });
        match state::decide(found.as_ref(), self.running, &self.system.version) {
            Action::Serve { write } => {
                let state = write.or(found)?;
                if self.save(&state) {
                    report(&state);
                }
            }
            Action::Trial { state } => {
                let trial = state.trial.as_ref()?;
                if self.save(&state) {
                    console::info(format!(
                        "trial boot of version {} in slot {}: it commits once the server is READY",
                        trial.version, trial.slot
                    ));
                    // The install that switched here left its artifact, and the last start
                    // its failure: neither belongs to this boot.
                    let _ = std::fs::remove_file(self.inbox().join(STAGED));
                    let _ = std::fs::remove_file(self.inbox().join(START_FAILURE));
                    self.trial = Some(TrialWatch::new(
                        &trial.version,
                        Instant::now(),
                        Duration::from_secs(self.system.commit_deadline_secs),
                    ));
                }
            }
            Action::RollBack { state } => {
                if self.save(&state) {
                    report(&state);
                    if self.switch(&state.committed) {
                        crate::shutdown::restart("rollback", data_mount);
                    }
                }
            }
            Action::Abandon { state } => {
                if self.save(&state) {
                    remove_durably(&self.inbox().join(STAGED));
                    report(&state);
                }
            }
        }
        Some(self)
    }

    /// The server exited; it counts against a trial.
    pub fn server_exited(&mut self, status: &str) {
        if let Some(watch) = &mut self.trial {
            watch.server_exited(status);
        }
    }

    /// On every pass of the run loop: commit or roll back a trial, else install a staged
    /// update. `Some(reason)` when the device must reboot now.
    pub fn poll(&mut self, server_ready: bool) -> Option<&'static str> {
        match &self.trial {
            Some(watch) => {
                let now = Instant::now();
                let verdict = match watch.verdict(now, server_ready, None) {
                    Verdict::RollBack(_) => {
                        let failure =
                            std::fs::read_to_string(self.inbox().join(START_FAILURE)).ok();
                        watch.verdict(now, server_ready, failure.as_deref())
                    }
                    other => other,
                };
                match verdict {
                    Verdict::Wait => None,
                    Verdict::Commit => {
                        self.commit();
                        None
                    }
                    Verdict::RollBack(reason) => self.roll_back(reason),
                }
            }
            None if self.inbox().join(STAGED).exists() => self.install(),
            None => None,
        }
    }

    fn commit(&mut self) {
        let Some(watch) = self.trial.take() else {
            return;
        };
        let current = self.current();
        let Some(state) = state::committed(&current) else {
            console::error(
                "update:commit",
                "state.json lost its trial; nothing to commit",
            );
            return;
        };
        if self.save(&state) {
            console::line(&format!(
                "EDGEIMG-UPDATE committed version={} slot={}",
                watch.version, self.running
            ));
        }
    }

    fn roll_back(&mut self, reason: String) -> Option<&'static str> {
        let watch = self.trial.take()?;
        let state = state::rolled_back(&self.current(), &watch.version, reason);
        if !self.save(&state) {
            return None;
        }
        report(&state);
        self.switch(&state.committed).then_some("rollback")
    }

    fn install(&mut self) -> Option<&'static str> {
        let staged = self.inbox().join(STAGED);
        let target = other_slot(self.running);
        let result = self.key().and_then(|key| {
            let devices = self.devices()?;
            let file = std::fs::File::open(&staged).map_err(|e| e.to_string())?;
            let manifest = read_manifest(std::io::BufReader::new(file), &key, &self.system)
                .map_err(|e| e.to_string())?;
            console::line(&format!(
                "EDGEIMG-UPDATE installing version={} slot={target}",
                manifest.version
            ));
            // Before the first byte of the slot: a power cut from here on is seen at boot.
            if !self.save(&state::installing(
                &self.current(),
                target,
                &manifest.version,
            )) {
                return Err("state.json could not be written".to_string());
            }
            let writing = std::time::Instant::now();
            install::install(&staged, &key, &self.system, target, &devices)
                .map(|m| (m, devices, writing.elapsed()))
                .map_err(|e| format!("version {}: {e}", manifest.version))
        });
        let (manifest, devices, written_in) = match result {
            Ok(done) => done,
            Err(why) => {
                self.refuse("unknown", &why);
                return None;
            }
        };
        let trial = state::with_trial(&self.current(), target, &manifest.version);
        if !self.save(&trial) {
            self.refuse(&manifest.version, "state.json could not be written");
            return None;
        }
        if let Err(e) = switch::switch_to(&devices.boot, target) {
            self.refuse(
                &manifest.version,
                &format!("switching config.txt to slot {target}: {e}"),
            );
            return None;
        }
        remove_durably(&staged);
        console::line(&format!(
            "EDGEIMG-UPDATE switched version={} slot={target} written_s={:.3}: rebooting into the trial",
            manifest.version,
            written_in.as_secs_f64()
        ));
        Some("update")
    }

    /// An install that failed: said, recorded, and its artifact removed; the device serves on.
    fn refuse(&mut self, version: &str, why: &str) {
        console::error(
            "update",
            format!(
                "{why}; the running slot {} is unchanged and keeps serving",
                self.running
            ),
        );
        remove_durably(&self.inbox().join(STAGED));
        let state = state::refused(&self.current(), version, why.to_string());
        self.save(&state);
    }

    fn key(&self) -> Result<VerifyingKey, String> {
        let path = self.system.public_key_file.as_deref().ok_or(
            "system.public_key_file is not set: this image cannot check an update's signature",
        )?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading system.public_key_file {path}: {e}"))?;
        signing::parse_public_key(&text)
            .map_err(|why| format!("system.public_key_file {path} {why}"))
    }

    /// Switches the top-level config.txt; false (and said) when it could not.
    fn switch(&self, slot: &str) -> bool {
        let result = self
            .devices()
            .and_then(|d| switch::switch_to(&d.boot, slot).map_err(|e| e.to_string()));
        match result {
            Ok(()) => true,
            Err(why) => {
                console::error(
                    "update:switch",
                    format!("cannot switch config.txt to slot {slot}: {why}"),
                );
                false
            }
        }
    }

    fn devices(&self) -> Result<partition::Devices, String> {
        match &self.devices {
            Some(devices) => Ok(devices.clone()),
            None => partition::find(&self.system),
        }
    }

    /// The state on disk, or the one this boot would have written.
    fn current(&self) -> SlotState {
        store::load(&self.state_path())
            .ok()
            .flatten()
            .unwrap_or_else(|| SlotState {
                committed: self.running.into(),
                committed_version: self.system.version.clone(),
                ..SlotState::default()
            })
    }

    /// Writes `state`; false (and said) when it could not.
    fn save(&self, state: &SlotState) -> bool {
        match store::save(&self.state_path(), state) {
            Ok(()) => true,
            Err(e) => {
                console::error(
                    "update:state",
                    format!("writing {}: {e}", self.state_path().display()),
                );
                false
            }
        }
    }

    fn state_path(&self) -> PathBuf {
        self.state_dir.join(STATE)
    }

    fn inbox(&self) -> PathBuf {
        self.state_dir.join(INBOX)
    }
}

/// `EDGEIMG-ROLLBACK` while the last attempt is a rollback: every boot says it until the next
/// update.
fn report(state: &SlotState) {
    if let Some(attempt) = &state.last_attempt {
        if attempt.outcome == Outcome::RolledBack {
            console::line(&format!(
                "EDGEIMG-ROLLBACK version={} reason={}",
                attempt.version,
                attempt.reason.replace('\n', " ")
            ));
        }
    }
}

fn remove_durably(path: &Path) {
    if std::fs::remove_file(path).is_ok() {
        if let Some(dir) = path.parent() {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
    }
}

#[cfg(test)]
mod tests;
