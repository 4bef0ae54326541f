//! A/B system updates end to end, on both QEMU arches: `edgeimg test recipes/ab-aarch64.toml`
//! boots the disk image, stores a model version on /data, then installs updates built from
//! the same recipe with keys changed: one that commits (and finds /data kept), one whose server
//! cannot start and one whose golden inference answers wrong (both roll back by themselves),
//! and two cut short by killing QEMU, while the slot is written and during the trial boot
//! (both come back on the version before).

mod common;

use std::path::Path;

use common::{project_root, recipe_text, shared_cache, stderr, with_mirror};

fn passes(recipe: &Path, out: &Path) -> String {
    let result = with_mirror(
        "test",
        recipe,
        &["--out", out.to_str().unwrap()],
        &shared_cache(),
    );
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    eprintln!("{stdout}");
    assert!(
        result.status.success(),
        "edgeimg test {} failed:\n{stdout}\n{}",
        recipe.display(),
        stderr(&result)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    for (check, words) in [
        ("v1 -> v2", "version 1 -> 2 committed"),
        ("server cannot start", "version 3 rolled back"),
        ("golden inference answers wrong", "version 3 rolled back"),
        (
            "killed while the slot is being written",
            "version 4 rolled back",
        ),
        ("killed during the trial boot", "version 5 rolled back"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(check))
            .unwrap_or_else(|| panic!("no {check:?} check:\n{stdout}"));
        assert!(line.trim_start().starts_with("ok"), "{line}\n{stdout}");
        assert!(
            stdout.contains(words),
            "the {check:?} check does not say {words:?}:\n{stdout}"
        );
    }
    stdout
}

#[test]
fn qemu_aarch64_updates_commit_and_roll_back_by_themselves() {
    let out = tempfile::tempdir().unwrap();
    passes(
        &project_root().join("recipes/ab-aarch64.toml"),
        &out.path().join("image"),
    );
}

#[test]
fn qemu_x86_64_updates_commit_and_roll_back_by_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("ab-x86.toml");
    std::fs::write(
        &recipe,
        recipe_text("ab-aarch64.toml")
            .replace("board = \"qemu-aarch64\"", "board = \"qemu-x86_64\"")
            .replace("edge-ab-arm64", "edge-ab-x86"),
    )
    .unwrap();
    passes(&recipe, &dir.path().join("image"));
}

/// The Pi card's slot switch under emulation: `recipes/pi.toml` with a token and
/// `[system_updates]`, v1 -> v2 on raspi3b (raspi4b has no network for the push; it boots
/// slot a only). QEMU has no Pi firmware: the harness reads the card's `config.txt` and boots
/// the slot folder it names, as the firmware would.
#[test]
fn pi_card_switches_slots_under_emulation() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = project_root().join("recipes/secrets");
    let recipe = dir.path().join("pi-ab.toml");
    let text = recipe_text("pi.toml").replace(
        "[runtime]\n",
        &format!(
            "[runtime]\nbearer_token_file = \"{}/api-token\"\n",
            secrets.display()
        ),
    ) + &format!(
        "\n[system_updates]\npublic_key = \"{0}/system.pub\"\nsigning_key = \"{0}/system.key\"\n\n\
         [[test]]\nname = \"v1 -> v2 on the Pi card\"\ninputs = {{ x = {{ random = 2 }} }}\n\
         system_update = {{ set = {{ \"image.version\" = \"2\" }}, expect = \"committed\" }}\n",
        secrets.display()
    );
    std::fs::write(&recipe, text).unwrap();
    let out = dir.path().join("image");
    let result = with_mirror(
        "test",
        &recipe,
        &["--out", out.to_str().unwrap()],
        &shared_cache(),
    );
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(result.status.success(), "{stdout}\n{}", stderr(&result));
    let line = stdout
        .lines()
        .find(|l| l.contains("v1 -> v2 on the Pi card"))
        .unwrap_or_else(|| panic!("no update check:\n{stdout}"));
    assert!(line.trim_start().starts_with("ok"), "{stdout}");
    assert!(stdout.contains("version 1 -> 2 committed"), "{stdout}");
}
