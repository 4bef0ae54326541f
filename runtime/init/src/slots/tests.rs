//! The whole sequence on files standing for the partitions: install, trial, commit, and the
//! refusals and rollbacks around it (everything but the reboots themselves).

use super::install::tests::{boot_file, disk, key, system, Disk};
use super::*;
use edge_config::system::Trial;

/// Slots of a device running `running`, over `disk`, its state in the disk's folder.
fn slots(disk: &Disk, running: &'static str) -> Slots {
    let public = disk.dir.path().join("update.pub");
    std::fs::write(&public, signing::public_key_text(&key().verifying_key())).unwrap();
    let mut system = system();
    system.state_dir = disk.dir.path().join("system").to_string_lossy().into();
    system.public_key_file = Some(public.to_string_lossy().into());
    Slots {
        running,
        state_dir: PathBuf::from(&system.state_dir),
        system,
        trial: None,
        devices: Some(disk.devices.clone()),
    }
}

fn stage(slots: &Slots, disk: &Disk) -> PathBuf {
    let staged = slots.inbox().join(STAGED);
    std::fs::create_dir_all(slots.inbox()).unwrap();
    std::fs::copy(&disk.staged, &staged).unwrap();
    staged
}

fn state(slots: &Slots) -> SlotState {
    store::load(&slots.state_path()).unwrap().unwrap()
}

fn booted(disk: &Disk) -> String {
    switch::booted(&disk.devices.boot).unwrap().unwrap()
}

#[test]
fn an_update_installs_boots_on_trial_and_commits_at_ready() {
    let disk = disk();
    let mut on_a = slots(&disk, "a").after_boot(None).unwrap();
    assert_eq!(state(&on_a).committed, "a", "a fresh card commits slot a");
    let staged = stage(&on_a, &disk);

    assert_eq!(on_a.poll(true), Some("update"));
    assert!(!staged.exists());
    assert_eq!(booted(&disk), "b");
    assert_eq!(
        state(&on_a).trial,
        Some(Trial {
            slot: "b".into(),
            version: "2".into(),
            boots: 0
        })
    );
    assert_eq!(std::fs::read(&disk.devices.roots[1]).unwrap(), disk.root);

    // The reboot into b: a trial, counted.
    let mut on_b = slots(&disk, "b");
    on_b.system.version = "2".into();
    let mut on_b = on_b.after_boot(None).unwrap();
    assert_eq!(state(&on_b).trial.unwrap().boots, 1);
    assert_eq!(on_b.poll(false), None, "not READY yet: waits");
    assert_eq!(on_b.poll(true), None);
    let committed = state(&on_b);
    assert_eq!(
        (
            committed.committed.as_str(),
            committed.committed_version.as_str()
        ),
        ("b", "2")
    );
    assert_eq!(committed.trial, None);
    assert_eq!(committed.last_attempt.unwrap().outcome, Outcome::Committed);
    assert_eq!(booted(&disk), "b");
}

#[test]
fn a_trial_whose_server_keeps_failing_switches_back() {
    let disk = disk();
    let mut on_a = slots(&disk, "a").after_boot(None).unwrap();
    stage(&on_a, &disk);
    assert_eq!(on_a.poll(true), Some("update"));

    let mut on_b = slots(&disk, "b").after_boot(None).unwrap();
    std::fs::write(
        on_b.inbox().join(START_FAILURE),
        "model 'm': wrong answer\n",
    )
    .unwrap();
    for _ in 0..trial::MAX_EXITS {
        assert_eq!(on_b.poll(false), None);
        on_b.server_exited("exit:3");
    }
    assert_eq!(on_b.poll(false), Some("rollback"));
    assert_eq!(booted(&disk), "a");
    let rolled = state(&on_b);
    assert_eq!((rolled.committed.as_str(), rolled.trial), ("a", None));
    let attempt = rolled.last_attempt.unwrap();
    assert_eq!(attempt.outcome, Outcome::RolledBack);
    assert!(
        attempt.reason.contains("exit:3") && attempt.reason.contains("wrong answer"),
        "{}",
        attempt.reason
    );
    // The slot a boot that follows serves, committed as before.
    let again = slots(&disk, "a").after_boot(None).unwrap();
    assert!(again.trial.is_none());
    assert_eq!(state(&again).committed, "a");
}

#[test]
fn a_bad_staged_update_is_refused_and_the_device_stays_on_its_slot() {
    let disk = disk();
    let mut on_a = slots(&disk, "a").after_boot(None).unwrap();
    let staged = stage(&on_a, &disk);
    let mut bytes = std::fs::read(&staged).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&staged, &bytes).unwrap();

    assert_eq!(on_a.poll(true), None);
    assert!(!staged.exists(), "a refused update is removed");
    assert_eq!(booted(&disk), "a");
    assert_eq!(boot_file(&disk, "a/vmlinuz").unwrap(), b"kernel a");
    let after = state(&on_a);
    assert_eq!((after.committed.as_str(), after.trial), ("a", None));
    let attempt = after.last_attempt.unwrap();
    assert_eq!(attempt.outcome, Outcome::Refused);
    assert!(attempt.reason.contains("sha256"), "{}", attempt.reason);
}
