//! The device defaults, checked from outside since the device has no shell: init's
//! `EDGEIMG-AUDIT` lines (how the server really runs, read from /proc) and whether a command
//! typed on the serial console gets an answer. Both hold the image to its recipe: no console
//! shell unless `runtime.debug_shell = true`.

use std::collections::BTreeMap;

use super::CheckOutcome;

pub const AUDIT_MARKER: &str = "EDGEIMG-AUDIT";
/// Typed on the console: a shell answers `shell-probe-42`; the terminal's echo of the typed
/// text cannot match, the arithmetic is not done.
pub const CONSOLE_PROBE: &str = "echo shell-probe-$((6*7))\n";
pub const CONSOLE_ANSWER: &str = "shell-probe-42";

/// The `EDGEIMG-AUDIT` lines of `console` that have ended. The console is read while the device
/// still prints (a Pi's emulated UART, byte by byte, under load): a line the read cut short is
/// not an audit yet.
pub fn audit_lines(console: &str) -> Vec<&str> {
    console
        .split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .filter_map(|l| {
            l.find(AUDIT_MARKER)
                .map(|at| l[at..].trim_end_matches('\r'))
        })
        .collect()
}

/// Every `EDGEIMG-AUDIT` line of `console` (one per server start) against the defaults.
pub fn check_audit(console: &str, debug_shell: bool) -> CheckOutcome {
    let audits = audit_lines(console);
    let mut problems: Vec<String> = Vec::new();
    if audits.is_empty() {
        problems.push(format!(
            "init printed no {AUDIT_MARKER} line after READY (an edge-init older than edgeimg?)"
        ));
    }
    for line in &audits {
        problems.extend(
            audit_problems(line, debug_shell)
                .into_iter()
                .map(|p| format!("{p} in {line:?}")),
        );
    }
    let detail = if problems.is_empty() {
        let last = audit_fields(audits.last().copied().unwrap_or_default());
        format!(
            "server as uid {} gid {}, no supplementary groups, no capabilities, no_new_privs, root read-only, {} ({} server start(s) audited)",
            last.get("uid").unwrap_or(&"?"),
            last.get("gid").unwrap_or(&"?"),
            if debug_shell { "debug shell on the console as the recipe asks" } else { "no console shell" },
            audits.len()
        )
    } else {
        problems.join("; ")
    };
    CheckOutcome {
        name: "device defaults (unprivileged server, read-only root, console)".into(),
        passed: problems.is_empty(),
        detail,
    }
}

/// Whether the console answered the probe, against what the recipe asks.
pub fn check_console(answered: bool, debug_shell: bool) -> CheckOutcome {
    let passed = answered == debug_shell;
    let detail = match (answered, debug_shell) {
        (false, false) => "a command typed on the serial console got no answer",
        (true, true) => "the debug shell answered on the serial console",
        (true, false) => "a command typed on the serial console was run, but the recipe asks for no console shell",
        (false, true) => "runtime.debug_shell = true, but a command typed on the serial console got no answer",
    };
    CheckOutcome {
        name: "serial console".into(),
        passed,
        detail: detail.into(),
    }
}

fn audit_fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .collect()
}

fn audit_problems(line: &str, debug_shell: bool) -> Vec<String> {
    let fields = audit_fields(line);
    let field = |key: &str| fields.get(key).copied().unwrap_or("missing");
    let mut problems = Vec::new();
    for key in ["uid", "gid"] {
        if !field(key).parse::<u32>().is_ok_and(|id| id != 0) {
            problems.push(format!("{key} {} is not one unprivileged id", field(key)));
        }
    }
    if field("groups") != "none" {
        problems.push(format!("supplementary groups {}", field("groups")));
    }
    for key in ["cap_prm", "cap_eff", "cap_bnd", "cap_amb"] {
        let value = field(key);
        if value.is_empty() || !value.chars().all(|c| c == '0') {
            problems.push(format!("{key} {value} is not empty"));
        }
    }
    if field("no_new_privs") != "1" {
        problems.push(format!("no_new_privs is {}", field("no_new_privs")));
    }
    if field("root") != "ro" {
        problems.push(format!("the root is mounted {}", field("root")));
    }
    match (field("console_shell"), debug_shell) {
        ("none", false) => {}
        (shell, false) => problems.push(format!(
            "console shell {shell} runs, but the recipe asks for none"
        )),
        ("none" | "missing", true) => {
            problems.push("runtime.debug_shell = true, but no console shell runs".to_string())
        }
        (_, true) => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "EDGEIMG-AUDIT server_pid=71 uid=1000 gid=1000 groups=none \
cap_prm=0000000000000000 cap_eff=0000000000000000 cap_bnd=0000000000000000 \
cap_amb=0000000000000000 no_new_privs=1 root=ro console_shell=none";

    #[test]
    fn the_defaults_pass_and_name_the_server_account() {
        let console = format!("[    1.2] random kernel line\nEDGEIMG-READY model=m\n{GOOD}\n");
        let outcome = check_audit(&console, false);
        assert!(outcome.passed, "{}", outcome.detail);
        assert!(
            outcome.detail.contains("uid 1000 gid 1000"),
            "{}",
            outcome.detail
        );
    }

    #[test]
    fn every_deviation_is_named() {
        let bad = GOOD
            .replace("uid=1000", "uid=1000,0,0,0")
            .replace("groups=none", "groups=10")
            .replace("cap_bnd=0000000000000000", "cap_bnd=000001ffffffffff")
            .replace("no_new_privs=1", "no_new_privs=0")
            .replace("root=ro", "root=rw")
            .replace("console_shell=none", "console_shell=97:sh");
        let outcome = check_audit(&format!("{bad}\n"), false);
        assert!(!outcome.passed);
        for needle in [
            "uid 1000,0,0,0",
            "groups 10",
            "cap_bnd",
            "no_new_privs is 0",
            "mounted rw",
            "97:sh",
        ] {
            assert!(
                outcome.detail.contains(needle),
                "{needle}: {}",
                outcome.detail
            );
        }
    }

    #[test]
    fn a_second_audit_after_a_restart_counts_too() {
        let console = format!("{GOOD}\nEDGEIMG-AUDIT server_pid=90 uid=0 gid=0\n");
        assert!(!check_audit(&console, false).passed);
        assert!(
            !check_audit("EDGEIMG-READY model=m\n", false).passed,
            "no audit at all"
        );
    }

    #[test]
    fn a_line_still_being_printed_is_not_read_as_an_audit() {
        // Read in the middle of the line: the cut-off part is no deviation, and no audit.
        let cut = &GOOD[..GOOD.find("groups=none").unwrap() + "groups=non".len()];
        let outcome = check_audit(&format!("EDGEIMG-READY model=m\r\n{cut}"), false);
        assert!(!outcome.passed);
        assert!(
            outcome.detail.contains("printed no EDGEIMG-AUDIT line"),
            "{}",
            outcome.detail
        );
        assert_eq!(audit_lines(&format!("{GOOD}\r\n{cut}")), vec![GOOD]);
    }

    #[test]
    fn a_debug_shell_is_expected_exactly_when_the_recipe_asks() {
        let with_shell = GOOD.replace("console_shell=none", "console_shell=97:sh");
        assert!(check_audit(&format!("{with_shell}\n"), true).passed);
        assert!(!check_audit(&format!("{GOOD}\n"), true).passed);
        assert!(check_console(false, false).passed);
        assert!(check_console(true, true).passed);
        assert!(!check_console(true, false).passed);
        assert!(!check_console(false, true).passed);
    }
}
