//! `system_update = { set = {...}, expect = ..., kill = ... }` checks: this recipe with some
//! keys changed, built as an A/B update, pushed to the booted device, and the device followed
//! through its reboots. QEMU ends when the guest reboots (`-no-reboot`); the harness then boots
//! it again from what the disk's boot partition names, in the firmware's place.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use edgeimg_qemu::{Board as QemuBoard, Qemu, RunningVm, SpawnOptions};

use crate::imagetest::checks::{build_inputs, CheckOutcome};
use crate::imagetest::qemu_boot::boot_spec;
use crate::imagetest::reboot::{addr, client as connect};
use crate::outputs::manifest::Manifest;
use crate::pipeline::{build_if_stale, BuildOptions};
use crate::plan::Plan;
use crate::recipe::{KillPoint, SystemUpdateCheck, SystemUpdateVerdict, Tamper, TestCase};
use crate::system_update::{self, UpdateResult};

/// Writes during a `kill = "mid-write"` check: a 20 MB root takes 20 s.
const SLOW_CARD_BYTES_PER_SEC: u64 = 1 << 20;

/// Boots one update may take: into the trial, back to the old slot, and one spare.
const MAX_BOOTS: usize = 4;

pub struct Device<'a> {
    pub plan: &'a Plan,
    pub manifest: &'a Manifest,
    pub machine: QemuBoard,
    pub token: Option<&'a str>,
    pub cache_dir: &'a Path,
    pub ready_timeout: Duration,
}

pub fn run_system_update(
    device: &Device,
    vm: &mut RunningVm,
    case: &TestCase,
    check: &SystemUpdateCheck,
    model: &str,
    n: usize,
) -> CheckOutcome {
    let result = apply(device, vm, case, check, model, n).map(|applied| applied.detail);
    CheckOutcome {
        name: case.name.get_ref().clone(),
        passed: result.is_ok(),
        detail: result
            .unwrap_or_else(|e| format!("{e:#}\n--- console tail ---\n{}", vm.console_tail(40))),
    }
}

/// What one update did, with its figures for the benchmark.
pub struct Applied {
    pub detail: String,
    pub artifact_bytes: u64,
    /// From the first byte sent to the device's 202 (stored and checked on `/data`).
    pub push_s: f64,
    /// From the first byte sent to the outcome seen on the status endpoint.
    pub outcome_s: f64,
    /// Init's write of the inactive slot and its read-back, by the guest's clock.
    pub write_s: Option<f64>,
    /// QEMU boots after the first (the trial, the way back).
    pub boots: usize,
}

/// Builds the update `check` describes, pushes it to the device in `vm` and follows it
/// (`vm` is the device's last boot afterwards); an error says how it differed from `expect`.
pub fn apply(
    device: &Device,
    vm: &mut RunningVm,
    case: &TestCase,
    check: &SystemUpdateCheck,
    model: &str,
    n: usize,
) -> Result<Applied> {
    let update = build_update(device, check, n)?;
    let mut artifact = system_update::artifact_in(&update.out_dir)?;
    if let Some(tamper) = check.tamper {
        artifact = damaged(&artifact, tamper, &update.out_dir)?;
    }
    let artifact_bytes = std::fs::metadata(&artifact)?.len();
    let client = connect(vm, device.token)?;
    let before = system_update::status(client.base(), device.token)?;
    let meta = client.metadata(model)?;
    let inputs = build_inputs(&meta, &case.inputs)?;
    let model_version = client.serving_version(model)?;
    let answer = client
        .infer(model, &inputs)
        .context("inference before the update")?;

    let started = Instant::now();
    let log = |boot: usize| {
        device
            .plan
            .out_dir
            .join(format!("console-system-update-{n}-boot-{boot}.log"))
    };
    // What else the check saw on the way (a second upload refused while the first installs).
    let mut seen = String::new();
    let pushed = match check.kill {
        Some(KillPoint::MidWrite) => {
            // Pushed from a thread: init starts writing the slot before the device answers.
            let (base, file, token) = (
                client.base().to_string(),
                artifact.clone(),
                device.token.map(str::to_string),
            );
            let push = std::thread::spawn(move || {
                system_update::push(&base, &file, token.as_deref(), false)
            });
            // A card this slow takes seconds over the slot: the cut lands mid-write.
            vm.throttle_writes(0, SLOW_CARD_BYTES_PER_SEC)?;
            vm.wait_for_line("EDGEIMG-UPDATE installing", false, Duration::from_secs(300))?;
            seen = second_push_refused(client.base(), &artifact, device.token)?;
            std::thread::sleep(Duration::from_secs(2));
            vm.kill();
            let _ = push.join();
            None
        }
        _ => system_update::push(client.base(), &artifact, device.token, false)?,
    };
    let push_s = started.elapsed().as_secs_f64();
    if let Some(refused) = pushed {
        let UpdateResult::Refused { status, reason } = &refused else {
            unreachable!("push answers a refusal or nothing");
        };
        if check.expect != SystemUpdateVerdict::Refused {
            bail!(
                "the device refused version {} (HTTP {status}): {reason}",
                update.version
            );
        }
        if let Some(words) = &check.reason {
            if !reason.contains(words.as_str()) {
                bail!("refused (HTTP {status}), but the reason does not say {words:?}: {reason}");
            }
        }
        let now = system_update::status(client.base(), device.token)?;
        if now.version != before.version {
            bail!(
                "refused, yet running version {} (was {})",
                now.version,
                before.version
            );
        }
        let after = client
            .infer(model, &inputs)
            .context("inference after the refusal")?;
        if after != answer {
            bail!(
                "refused, yet version {} answers differently than before",
                now.version
            );
        }
        return Ok(Applied {
            detail: format!("refused (HTTP {status}): {reason}"),
            artifact_bytes,
            push_s,
            outcome_s: push_s,
            write_s: None,
            boots: 0,
        });
    }
    if check.expect == SystemUpdateVerdict::Refused {
        bail!(
            "the device took version {} instead of refusing it",
            update.version
        );
    }
    let mut boots = 0;
    let mut write_s = None;
    let mut kill_in_trial = check.kill == Some(KillPoint::Trial);
    let outcome = system_update::wait_for_outcome(
        &update.version,
        before.state.as_ref().and_then(|s| s.last_attempt.as_ref()),
        Duration::from_secs(900),
        started,
        || {
            if !vm_alive(vm) {
                if boots == 0 {
                    write_s = written_seconds(&vm.console_tail(400));
                }
                boots += 1;
                if boots > MAX_BOOTS {
                    bail!("the device rebooted {boots} times without an outcome");
                }
                let spec = boot_spec(
                    device.plan.board,
                    device.machine,
                    &device.plan.out_dir,
                    device.manifest,
                    "",
                )?;
                *vm = Qemu::spawn(
                    &spec,
                    &SpawnOptions {
                        console_log: Some(log(boots)),
                        ..Default::default()
                    },
                )?;
                if kill_in_trial {
                    // The trial boot: cut the power once its server is starting, before READY.
                    kill_in_trial = false;
                    vm.wait_for_line("starting the server", true, device.ready_timeout)?;
                    vm.kill();
                    bail!("QEMU killed during the trial boot");
                }
                vm.wait_for_ready(device.ready_timeout)?;
            }
            system_update::status(&format!("http://{}", addr(vm)?), device.token)
        },
    )?;
    let client = connect(vm, device.token)?;
    let served = client.serving_version(model)?;
    if served != model_version {
        bail!("model {model} served version {model_version} before the update and {served} after: /data was not kept");
    }
    let after = client
        .infer(model, &inputs)
        .context("inference after the update")?;
    let applied = |detail: String, seconds: f64| Applied {
        detail,
        artifact_bytes,
        push_s,
        outcome_s: seconds,
        write_s,
        boots,
    };
    match (outcome, check.expect) {
        (UpdateResult::Committed { version, seconds }, SystemUpdateVerdict::Committed) => Ok(applied(format!(
            "version {} -> {version} committed {seconds:.1} s after the push began ({artifact_bytes} bytes, taken in {push_s:.1} s; slot written and read back in {}; {boots} boot(s)); /data kept (model {model} still version {model_version}); {} output(s) after",
            before.version,
            write_s.map_or("? s (no EDGEIMG-UPDATE switched line)".to_string(), |w| format!("{w:.1} s")),
            after.len()
        ), seconds)),
        (UpdateResult::RolledBack { version, running, reason, seconds }, SystemUpdateVerdict::RolledBack) => {
            if running != before.version {
                bail!("rolled back to version {running}, not to {}", before.version);
            }
            if after != answer {
                bail!("back on version {running}, it answers differently than before the update");
            }
            let rollback_line = (1..=boots).any(|b| std::fs::read_to_string(log(b)).is_ok_and(|t| t.contains("EDGEIMG-ROLLBACK")));
            if !rollback_line {
                bail!("rolled back, but no boot printed an EDGEIMG-ROLLBACK line");
            }
            Ok(applied(format!(
                "version {version} rolled back {seconds:.1} s after the push began ({boots} boot(s)): {reason}; version {running} answers as before{seen}"
            ), seconds))
        }
        (got, expected) => bail!("expected {expected:?}, got {got:?}"),
    }
}

/// The `written_s=` of init's `EDGEIMG-UPDATE switched` line: how long the slot's write and
/// read-back took.
fn written_seconds(console: &str) -> Option<f64> {
    let line = console
        .lines()
        .find(|l| l.contains("EDGEIMG-UPDATE switched"))?;
    let value = line.split_once("written_s=")?.1;
    value
        .split(|c: char| c == ':' || c.is_whitespace())
        .next()?
        .parse()
        .ok()
}

/// While the device installs one update, another upload must be turned away (409).
fn second_push_refused(base: &str, artifact: &Path, token: Option<&str>) -> Result<String> {
    match system_update::push(base, artifact, token, false)? {
        Some(UpdateResult::Refused {
            status: 409,
            reason,
        }) => Ok(format!(
            "; a second upload while it installed: refused (HTTP 409): {reason}"
        )),
        other => {
            bail!("a second upload while the first installed was not refused with 409: {other:?}")
        }
    }
}

/// A copy of `artifact` damaged as `tamper` says, beside the update's build.
fn damaged(artifact: &Path, tamper: Tamper, out_dir: &Path) -> Result<std::path::PathBuf> {
    let mut bytes = std::fs::read(artifact)?;
    match tamper {
        Tamper::Truncated => bytes.truncate(bytes.len() / 2),
        Tamper::Corrupt => {
            let mut archive = tar::Archive::new(std::fs::File::open(artifact)?);
            let middle = archive
                .entries()?
                .filter_map(Result::ok)
                .find(|e| e.path().is_ok_and(|p| p == Path::new("root.squashfs")))
                .map(|e| e.raw_file_position() + e.size() / 2)
                .context("the update has no root.squashfs to damage")?;
            bytes[middle as usize] ^= 0x5a;
        }
    }
    let path = out_dir.join(format!("damaged-{tamper:?}.update").to_lowercase());
    std::fs::write(&path, bytes)?;
    Ok(path)
}

fn vm_alive(vm: &mut RunningVm) -> bool {
    matches!(vm.exit_status(), Ok(None))
}

struct BuiltUpdate {
    out_dir: std::path::PathBuf,
    version: String,
}

/// This recipe with `check.set` applied, built beside the image (`OUT/updates/N/`).
fn build_update(device: &Device, check: &SystemUpdateCheck, n: usize) -> Result<BuiltUpdate> {
    let plan = device.plan;
    let mut set = check.set.clone();
    if check.wrong_key {
        let stranger = plan.out_dir.join("updates").join(format!("{n}-stranger"));
        std::fs::create_dir_all(stranger.parent().expect("in updates/"))?;
        for ext in ["key", "pub"] {
            // A new stranger each run: keygen never replaces a key.
            let _ = std::fs::remove_file(stranger.with_extension(ext));
        }
        let (secret, public) = crate::update::keygen(&stranger)?;
        for (key, file) in [("signing_key", secret), ("public_key", public)] {
            // The recipe resolves relative paths against its own folder.
            let file = std::path::absolute(&file)?;
            let file = toml::Value::String(file.display().to_string());
            set.insert(format!("system_updates.{key}"), file);
        }
    }
    let variant = plan.variant(&set, plan.out_dir.join("updates").join(n.to_string()))?;
    build_if_stale(
        &variant,
        &BuildOptions {
            cache_dir: device.cache_dir.to_path_buf(),
            progress: crate::packages::Progress::hidden(),
        },
    )
    .with_context(|| format!("building the update {:?}", check.set))?;
    Ok(BuiltUpdate {
        out_dir: variant.out_dir,
        version: variant.version,
    })
}

#[cfg(test)]
mod tests {
    use super::written_seconds;

    #[test]
    fn the_slot_write_time_is_read_from_inits_switched_line() {
        let console = "[    9.1] EDGEIMG-UPDATE installing version=2 slot=b\n\
            [   12.4] EDGEIMG-UPDATE switched version=2 slot=b written_s=3.250: rebooting into the trial\n";
        assert_eq!(written_seconds(console), Some(3.25));
        assert_eq!(
            written_seconds("EDGEIMG-UPDATE installing version=2 slot=b"),
            None
        );
    }
}
