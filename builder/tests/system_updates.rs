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
        ("golden inference answers wrong", "version 4 rolled back"),
        (
            "killed while the slot is being written",
            "version 5 rolled back",
        ),
        (
            "killed while the slot is being written",
            "a second upload while it installed: refused (HTTP 409)",
        ),
        ("killed during the trial boot", "version 6 rolled back"),
        ("another board", "refused (HTTP 422)"),
        ("does not trust", "refused (HTTP 403)"),
        ("truncated update", "refused (HTTP 400)"),
        ("one byte of its root changed", "refused (HTTP 400)"),
        ("bigger than this device's slots", "refused (HTTP 422)"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(check))
            .unwrap_or_else(|| panic!("no {check:?} check:\n{stdout}"));
        assert!(line.trim_start().starts_with("ok"), "{line}\n{stdout}");
        assert!(
            line.contains(words),
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

/// What a user types: `edgeimg run` boots the A/B image and follows its reboots as firmware
/// would, keeping the API's address; `edgeimg build` makes version 2; `edgeimg update --device
/// --image` streams it, waits through the trial boot, and prints the outcome.
#[test]
fn edgeimg_update_installs_a_build_on_the_device_edgeimg_run_boots() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let text = recipe_text("ab-aarch64.toml");
    let (v1, v2) = (dir.path().join("v1.toml"), dir.path().join("v2.toml"));
    std::fs::write(&v1, &text).unwrap();
    std::fs::write(&v2, text.replace("version = \"1\"", "version = \"2\"")).unwrap();
    let (out1, out2) = (dir.path().join("v1"), dir.path().join("v2"));
    let built = with_mirror(
        "build",
        &v2,
        &["--out", out2.to_str().unwrap()],
        &shared_cache(),
    );
    assert!(built.status.success(), "{}", stderr(&built));

    let m = common::mirror();
    let mut run = Command::new(env!("CARGO_BIN_EXE_edgeimg"));
    run.args(["run", v1.to_str().unwrap(), "--out", out1.to_str().unwrap()])
        .args(["--mirror", m.dir.to_str().unwrap()])
        .args(["--trust-key", m.key.to_str().unwrap()])
        .env("EDGEIMG_CACHE", shared_cache())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own group: the test ends edgeimg and its QEMU together.
        .process_group(0);
    let mut run = run.spawn().unwrap();
    let group = run.id() as libc::pid_t;
    let stop = || {
        // SAFETY: a plain signal to the group this test made; no memory is involved.
        unsafe { libc::killpg(group, libc::SIGTERM) };
    };
    let mut lines = BufReader::new(run.stderr.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            let at = l.find("API forwarded to ")? + "API forwarded to ".len();
            Some(l[at..].split("/v2").next()?.to_string())
        })
        .unwrap_or_else(|| {
            stop();
            panic!("edgeimg run printed no API address")
        });
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let ready = format!("{url}/v2/health/ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while ureq::get(&ready).call().is_err() {
        if std::time::Instant::now() > deadline {
            stop();
            panic!("the device at {url} was not ready within 300 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let token = project_root().join("recipes/secrets/api-token");
    let update = common::edgeimg(
        &[
            "update",
            "--device",
            &url,
            "--image",
            out2.to_str().unwrap(),
            "--token-file",
            token.to_str().unwrap(),
        ],
        &[],
    );
    stop();
    let _ = run.wait();
    let after = rest.join().unwrap().join("\n");
    let stdout = String::from_utf8_lossy(&update.stdout);
    assert!(
        update.status.success() && stdout.contains("committed: running version 2"),
        "edgeimg update:\n{stdout}\n{}\n--- edgeimg run ---\n{after}",
        stderr(&update)
    );
    assert!(
        after.contains("the guest rebooted") && after.contains(&url),
        "edgeimg run did not boot the trial at the same address:\n{after}"
    );
}
