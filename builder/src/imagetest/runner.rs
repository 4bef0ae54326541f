//! `edgeimg test`: boot a built image headless, wait for ready, run the recipe's checks over
//! the forwarded API, power off. Every failure carries the console's tail.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use edgeimg_qemu::{Board as QemuBoard, Qemu, RunningVm, SpawnOptions};

use crate::imagetest::checks::command::run_command;
use crate::imagetest::checks::device::{
    audit_lines, check_audit, check_console, CONSOLE_ANSWER, CONSOLE_PROBE,
};
use crate::imagetest::checks::{run_case, CheckOutcome, InferClient, UpdateContext};
use crate::imagetest::files;
use crate::imagetest::host_server::start_reference;
use crate::imagetest::qemu_boot::{boot_spec, qemu_boards, reset_working_copies};
use crate::imagetest::reboot::run_reboot;
use crate::imagetest::system_update::{run_system_update, Device};
use crate::outputs::manifest::Manifest;
use crate::plan::Plan;
use crate::recipe::{recipe_dir, TestCase};

pub struct TestOptions {
    pub ready_timeout: Duration,
    pub cache_dir: PathBuf,
}

/// One boot of the image on one emulated machine.
#[derive(Debug)]
pub struct TestReport {
    /// The QEMU machine, e.g. `raspi4b`.
    pub machine: String,
    pub host_boot_to_ready: Duration,
    pub guest_ms_since_boot: u64,
    pub accel: String,
    pub cases: Vec<CheckOutcome>,
    /// Why the recipe's checks did not run on this machine (it has no network).
    pub checks_elsewhere: Option<String>,
    pub poweroff: Option<Duration>,
    /// Set when something failed outside the cases (boot, restart, power-off).
    pub failure: Option<String>,
    pub console_log: PathBuf,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.failure.is_none() && self.cases.iter().all(|c| c.passed)
    }
}

const TAIL_LINES: usize = 40;
const KILL_FLAG: &str = "edgeimg.selftest=kill-server";

/// Boots the image on every machine that stands in for its board (see
/// [`crate::imagetest::qemu_boot::qemu_boards`]), one after the other.
pub fn test_image(plan: &Plan, manifest: &Manifest, opts: &TestOptions) -> Result<Vec<TestReport>> {
    // The checks' files (pictures, downloads) are fetched before the boot, so a bad pin or
    // a missing file fails at once, not after minutes of emulation.
    let recipe_dir = recipe_dir(&plan.recipe_path);
    let tests = plan
        .tests
        .iter()
        .map(|case| files::localize(case, &recipe_dir, &opts.cache_dir))
        .collect::<Result<Vec<_>>>()?;
    let plan = &Plan {
        tests,
        ..plan.clone()
    };
    if plan.runtime.tls.is_some() {
        bail!(
            "edgeimg test speaks plain HTTP to the device, and runtime.tls is set; test a copy of the recipe without `tls` (edge-runtime's own tests check TLS with a client that verifies the certificate)"
        );
    }
    // Read from where the recipe points, like the build did; held in memory only.
    let token = plan.runtime.api_token()?;
    let machines = qemu_boards(plan.board);
    let with_network = machines.iter().find(|m| m.profile().nic.is_some());
    let mut reports = Vec::new();
    for (n, &machine) in machines.iter().enumerate() {
        // The board's own machine keeps the usual name.
        let log = if n == 0 {
            plan.out_dir.join("console.log")
        } else {
            plan.out_dir.join(format!("console.{machine}.log"))
        };
        reports.push(test_on(
            plan,
            manifest,
            machine,
            with_network.copied(),
            log,
            token.clone(),
            opts,
        )?);
    }
    Ok(reports)
}

fn test_on(
    plan: &Plan,
    manifest: &Manifest,
    machine: QemuBoard,
    with_network: Option<QemuBoard>,
    console_log: PathBuf,
    token: Option<String>,
    opts: &TestOptions,
) -> Result<TestReport> {
    let kill = plan.tests.iter().any(|t| t.kill_server);
    // A test starts from the device as built: nothing stored by an earlier run.
    reset_working_copies(manifest, &plan.out_dir)?;
    let spec = boot_spec(
        plan.board,
        machine,
        &plan.out_dir,
        manifest,
        if kill { KILL_FLAG } else { "" },
    )?;
    let mut vm = Qemu::spawn(
        &spec,
        &SpawnOptions {
            console_log: Some(console_log.clone()),
            ..Default::default()
        },
    )?;
    let ready = vm.wait_for_ready(opts.ready_timeout)?;
    // Typed now, judged after the cases: a shell has had all that time to answer.
    let probe_typed = Instant::now();
    let probe = vm.write_console(CONSOLE_PROBE);
    let mut report = TestReport {
        machine: machine.to_string(),
        host_boot_to_ready: ready.host_boot_to_ready,
        guest_ms_since_boot: ready.line.ms_since_boot,
        accel: ready.accel.to_string(),
        cases: Vec::new(),
        checks_elsewhere: None,
        poweroff: None,
        failure: None,
        console_log: console_log.clone(),
    };
    let token_for_reboots = token.clone();
    let device = vm
        .api_addr()
        .map(|addr| InferClient::new(format!("http://{addr}"), token));

    if kill {
        if let Err(e) = wait_for_restart(&vm, device.as_ref(), &console_log) {
            report.failure = Some(format!(
                "{e:#}\n--- console tail ---\n{}",
                vm.console_tail(TAIL_LINES)
            ));
        }
    }
    if report.failure.is_none() {
        match &device {
            Some(device) => report.cases = run_cases(plan, manifest, device, &opts.cache_dir),
            None if plan.tests.is_empty() => {}
            None => match with_network {
                Some(other) => {
                    report.checks_elsewhere = Some(format!(
                        "no network on {machine} (QEMU models no Ethernet there): the recipe's {} check(s) run on {other}",
                        plan.tests.len()
                    ))
                }
                None => {
                    report.failure = Some(format!(
                        "{machine} has no network and no other machine boots this board: the recipe's checks cannot run"
                    ))
                }
            },
        }
        report
            .cases
            .extend(device_checks(plan, &console_log, probe, probe_typed));
        // After the console checks, which read the first boot's log; only where the API is
        // reachable (a machine without a network leaves the recipe's checks to another).
        if device.is_some() {
            report.cases.extend(system_update_cases(
                plan,
                manifest,
                machine,
                &mut vm,
                token_for_reboots.as_deref(),
                opts,
            ));
            report.cases.extend(reboot_cases(
                plan,
                manifest,
                machine,
                &mut vm,
                token_for_reboots.as_deref(),
                opts,
            ));
        }
    }
    match vm.powerdown(Duration::from_secs(30)) {
        Ok(took) => report.poweroff = Some(took),
        Err(e) => {
            report
                .failure
                .get_or_insert(format!("clean power-off failed: {e}"));
        }
    }
    if !report.passed() && report.failure.is_none() {
        report.failure = Some(format!("--- console tail ---\n{}", tail(&console_log)));
    }
    Ok(report)
}

fn run_cases(
    plan: &Plan,
    manifest: &Manifest,
    device: &InferClient,
    cache_dir: &Path,
) -> Vec<CheckOutcome> {
    if manifest.models.is_empty() {
        return Vec::new();
    }
    let needs_reference = plan.tests.iter().any(|t| t.compare_onnxruntime);
    let frozen: Vec<(String, PathBuf)> = manifest
        .models
        .iter()
        .map(|m| {
            let file = plan.out_dir.join(format!("{}.model.onnx", m.name));
            (m.name.clone(), file)
        })
        .collect();
    let reference = if needs_reference {
        let models: Vec<(&str, &Path)> = frozen
            .iter()
            .map(|(name, file)| (name.as_str(), file.as_path()))
            .collect();
        match start_reference(cache_dir, &models) {
            Ok(r) => Some(r),
            Err(e) => {
                return plan
                    .tests
                    .iter()
                    .map(|t| CheckOutcome {
                        name: t.name.get_ref().clone(),
                        passed: false,
                        detail: format!("cannot start the host ONNX Runtime reference: {e:#}"),
                    })
                    .collect()
            }
        }
    } else {
        None
    };
    let context = UpdateContext { plan, cache_dir };
    plan.tests
        .iter()
        .filter(|case| case.reboot.is_none() && case.system_update.is_none())
        .map(|case| {
            if !case.command.is_empty() {
                let dir = recipe_dir(&plan.recipe_path);
                let result = run_command(case, device.base(), &dir, cache_dir);
                return CheckOutcome {
                    name: case.name.get_ref().clone(),
                    passed: result.is_ok(),
                    detail: result.unwrap_or_else(|e| format!("{e:#}")),
                };
            }
            run_case(
                device,
                reference.as_ref().map(|r| &r.client),
                case_model(case, manifest),
                case,
                &context,
            )
        })
        .collect()
}

/// The model a case asks: the one it names, else the image's only one (the recipe refuses a
/// case that names none when the image serves several). `manifest.models` is not empty.
fn case_model<'a>(case: &'a TestCase, manifest: &'a Manifest) -> &'a str {
    case.model
        .as_ref()
        .map_or(manifest.models[0].name.as_str(), |m| m.get_ref().as_str())
}

/// The `system_update` cases, in recipe order, each updating the device as the last one left it.
fn system_update_cases(
    plan: &Plan,
    manifest: &Manifest,
    machine: QemuBoard,
    vm: &mut RunningVm,
    token: Option<&str>,
    opts: &TestOptions,
) -> Vec<CheckOutcome> {
    let device = Device {
        plan,
        manifest,
        machine,
        token,
        cache_dir: &opts.cache_dir,
        ready_timeout: opts.ready_timeout,
    };
    plan.tests
        .iter()
        .filter_map(|case| Some((case, case.system_update.as_ref()?.get_ref())))
        .enumerate()
        .map(|(n, (case, check))| {
            run_system_update(&device, vm, case, check, case_model(case, manifest), n + 1)
        })
        .collect()
}

/// The `reboot` cases, in recipe order, each booting the image again (without the self-test
/// kill) on the same data disk, each with its own console log.
fn reboot_cases(
    plan: &Plan,
    manifest: &Manifest,
    machine: QemuBoard,
    vm: &mut RunningVm,
    token: Option<&str>,
    opts: &TestOptions,
) -> Vec<CheckOutcome> {
    let cases: Vec<_> = plan
        .tests
        .iter()
        .filter_map(|case| Some((case, *case.reboot.as_ref()?.get_ref())))
        .collect();
    if manifest.models.is_empty() || cases.is_empty() {
        return Vec::new();
    }
    let spec = match boot_spec(plan.board, machine, &plan.out_dir, manifest, "") {
        Ok(spec) => spec,
        Err(e) => {
            return cases
                .iter()
                .map(|(case, _)| CheckOutcome {
                    name: case.name.get_ref().clone(),
                    passed: false,
                    detail: format!("cannot boot the image again: {e:#}"),
                })
                .collect()
        }
    };
    cases
        .into_iter()
        .enumerate()
        .map(|(n, (case, kind))| {
            let log = plan.out_dir.join(format!("console-reboot-{}.log", n + 1));
            let model = case_model(case, manifest);
            // What a cut-off upload sends: the image's own model file (any real model would do).
            let upload = plan.out_dir.join(format!("{model}.model.onnx"));
            run_reboot(
                vm,
                &spec,
                case,
                kind,
                model,
                &upload,
                token,
                &log,
                opts.ready_timeout,
            )
        })
        .collect()
}

/// The audit of every server start, and whether the console answered the typed probe.
fn device_checks(
    plan: &Plan,
    log: &Path,
    probe: edgeimg_qemu::Result<()>,
    probe_typed: Instant,
) -> Vec<CheckOutcome> {
    let debug_shell = plan.runtime.debug_shell;
    // Init prints the audit right after each READY; the API may have answered a moment sooner.
    wait_in_log(log, Duration::from_secs(15), |text| {
        audit_lines(text).len() >= text.matches("EDGEIMG-READY").count()
    });
    let audit = check_audit(&read_console_log(log), debug_shell);
    let console = match probe {
        Ok(()) => {
            // An absent answer needs some time to mean anything; a shell answers within it.
            let patience = CONSOLE_PATIENCE.saturating_sub(probe_typed.elapsed());
            let answered = wait_in_log(log, patience, |text| text.contains(CONSOLE_ANSWER));
            check_console(answered, debug_shell)
        }
        Err(e) => CheckOutcome {
            name: "serial console".into(),
            passed: false,
            detail: format!("cannot type on the serial console: {e}"),
        },
    };
    vec![audit, console]
}

/// How long after typing the console probe its answer may take: a shell answers an `echo` in
/// well under a second even under TCG, and the audit's `console_shell` is the first witness.
const CONSOLE_PATIENCE: Duration = Duration::from_secs(2);

/// Polls the console log until `until` holds (true) or `patience` runs out (false).
fn wait_in_log(log: &Path, patience: Duration, until: impl Fn(&str) -> bool) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        if until(&read_console_log(log)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// After init's self-test kill: the restart line on the console, then the API answering again
/// (without a network: the second READY line).
fn wait_for_restart(vm: &RunningVm, device: Option<&InferClient>, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    if !wait_in_log(log, Duration::from_secs(60), |text| {
        text.contains("EDGEIMG-RESTARTED")
    }) {
        bail!("init did not restart the server within 60 s of killing it");
    }
    let Some(device) = device else {
        if !wait_in_log(log, Duration::from_secs(60), |text| {
            text.matches("EDGEIMG-READY").count() >= 2
        }) {
            bail!("the server was not ready again within 60 s of its restart");
        }
        return Ok(());
    };
    while !device.ready() {
        if Instant::now() > deadline {
            bail!(
                "the API did not answer again within 60 s of the server's restart (pid {})",
                vm.pid()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The console log as text. A UART may print stray non-UTF-8 bytes (the Pi's does when its
/// clock is set), and they must not hide every line of the log.
fn read_console_log(log: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned()
}

fn tail(log: &Path) -> String {
    let text = read_console_log(log);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// JUnit XML for CI systems: a test suite per machine.
pub fn write_junit(reports: &[TestReport], image: &str, path: &Path) -> Result<()> {
    use quick_junit::Report;
    let mut junit = Report::new("edgeimg");
    for report in reports {
        junit.add_test_suite(junit_suite(report, image));
    }
    std::fs::write(path, junit.to_string()?)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn junit_suite(report: &TestReport, image: &str) -> quick_junit::TestSuite {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("edgeimg test {image} on {}", report.machine));
    let mut boot = TestCase::new("boot to ready", TestCaseStatus::success());
    boot.set_time(report.host_boot_to_ready);
    suite.add_test_case(boot);
    for case in &report.cases {
        let status = if case.passed {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(case.detail.clone());
            s
        };
        let mut tc = TestCase::new(case.name.clone(), status);
        tc.set_system_out(case.detail.clone());
        suite.add_test_case(tc);
    }
    if let Some(failure) = &report.failure {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(failure.clone());
        suite.add_test_case(TestCase::new("image", s));
    }
    suite
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stray_byte_on_the_uart_hides_no_line_of_the_console_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        std::fs::write(
            &log,
            b"\xb2[    0.000000] Booting\r\nEDGEIMG-AUDIT uid=1000\r\n",
        )
        .unwrap();
        assert!(read_console_log(&log).contains("EDGEIMG-AUDIT uid=1000"));
        assert!(
            tail(&log).ends_with("EDGEIMG-AUDIT uid=1000"),
            "{}",
            tail(&log)
        );
    }
}
