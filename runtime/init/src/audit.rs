//! `EDGEIMG-AUDIT`: the device has no shell, so init says on the console how the server really
//! runs, read back from /proc (what the kernel enforces, not what init meant to set up):
//!
//! `EDGEIMG-AUDIT server_pid=<n> uid=<n> gid=<n> groups=<none|a,b> cap_prm=<hex> cap_eff=<hex>
//! cap_bnd=<hex> cap_amb=<hex> no_new_privs=<0|1> root=<ro|rw> console_shell=<none|pid:comm,...>`
//!
//! `uid`/`gid` are one number when the real, effective, saved and file-system ids agree, else
//! all four; `root` is `/` as the server's mount table has it; `console_shell` lists every
//! process but init that reads a terminal (its controlling terminal or its stdin), so a shell
//! or getty on the console shows however it was started. Unreadable values are `?`.

use std::path::Path;

use nix::unistd::Pid;

/// The `/proc/<pid>/status` keys reported, and their names in the audit line.
const STATUS_KEYS: [(&str, &str); 8] = [
    ("Uid", "uid"),
    ("Gid", "gid"),
    ("Groups", "groups"),
    ("CapPrm", "cap_prm"),
    ("CapEff", "cap_eff"),
    ("CapBnd", "cap_bnd"),
    ("CapAmb", "cap_amb"),
    ("NoNewPrivs", "no_new_privs"),
];

/// The audit line for the server running as `server`.
pub fn line(server: Pid) -> String {
    let proc_dir = Path::new("/proc").join(server.to_string());
    let status = std::fs::read_to_string(proc_dir.join("status")).unwrap_or_default();
    let mounts = std::fs::read_to_string(proc_dir.join("mounts")).unwrap_or_default();
    let mut words = vec![format!("EDGEIMG-AUDIT server_pid={server}")];
    words.extend(
        status_words(&status)
            .into_iter()
            .map(|(key, value)| format!("{key}={value}")),
    );
    words.push(format!("root={}", root_mode(&mounts).unwrap_or("?")));
    let readers = console_readers();
    words.push(format!(
        "console_shell={}",
        if readers.is_empty() {
            "none".to_string()
        } else {
            readers.join(",")
        }
    ));
    words.join(" ")
}

/// The reported `/proc/<pid>/status` values, in `STATUS_KEYS` order.
pub fn status_words(status: &str) -> Vec<(&'static str, String)> {
    STATUS_KEYS
        .iter()
        .map(|(key, name)| {
            let value = status
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .map(|v| v.split_whitespace().collect::<Vec<_>>());
            let shown = match value {
                None => "?".to_string(),
                Some(ids) if *key == "Groups" && ids.is_empty() => "none".to_string(),
                Some(ids) if ids.len() > 1 && ids.iter().all(|id| *id == ids[0]) => {
                    ids[0].to_string()
                }
                Some(ids) if ids.is_empty() => "?".to_string(),
                Some(ids) => ids.join(","),
            };
            (*name, shown)
        })
        .collect()
}

/// `ro` or `rw` for `/` in a `/proc/<pid>/mounts` table: the last mount on `/` is the one seen.
pub fn root_mode(mounts: &str) -> Option<&str> {
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.get(1) == Some(&"/"))
        .filter_map(|fields| fields.get(3).copied())
        .next_back()
        .and_then(|options| options.split(',').find(|o| *o == "ro" || *o == "rw"))
}

/// `pid:comm` of every process but init that has a controlling terminal or a terminal as stdin.
fn console_readers() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec!["?".to_string()];
    };
    let mut found: Vec<(u32, String)> = entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            if pid == 1 {
                return None;
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let stdin = std::fs::read_link(entry.path().join("fd/0")).ok();
            reads_a_terminal(&stat, stdin.as_deref()).then(|| (pid, comm(&stat).to_string()))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(pid, comm)| format!("{pid}:{comm}"))
        .collect()
}

/// Whether a process (its `/proc/<pid>/stat` line and where its fd 0 points) has a terminal.
pub fn reads_a_terminal(stat: &str, stdin: Option<&Path>) -> bool {
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let tty_nr = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(4))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let stdin_is_tty = stdin.and_then(Path::to_str).is_some_and(|target| {
        ["/dev/console", "/dev/tty", "/dev/pts/"]
            .iter()
            .any(|prefix| target.starts_with(prefix))
    });
    tty_nr != 0 || stdin_is_tty
}

fn comm(stat: &str) -> &str {
    match (stat.find('('), stat.rfind(')')) {
        (Some(open), Some(close)) if open < close => &stat[open + 1..close],
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER_STATUS: &str = "Name:\tedge-runtime\nUmask:\t0022\nState:\tS (sleeping)\n\
Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t\n\
CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t0\n";

    #[test]
    fn an_unprivileged_server_reads_as_such() {
        let words = status_words(SERVER_STATUS);
        let text: Vec<String> = words.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            text.join(" "),
            "uid=1000 gid=1000 groups=none cap_prm=0000000000000000 \
cap_eff=0000000000000000 cap_bnd=0000000000000000 cap_amb=0000000000000000 no_new_privs=1"
        );
    }

    #[test]
    fn mixed_ids_groups_and_missing_keys_are_shown_as_they_are() {
        let status = "Uid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t4 27\n";
        let words = status_words(status);
        assert_eq!(words[0], ("uid", "1000,0,0,0".to_string()));
        assert_eq!(words[1], ("gid", "0".to_string()));
        assert_eq!(words[2], ("groups", "4,27".to_string()));
        assert_eq!(words[3], ("cap_prm", "?".to_string()));
    }

    #[test]
    fn the_last_mount_on_root_decides() {
        let initramfs = "rootfs / rootfs rw 0 0\nproc /proc proc rw,nosuid 0 0\n";
        assert_eq!(root_mode(initramfs), Some("rw"));
        let remounted = "rootfs / rootfs ro,nodev 0 0\n";
        assert_eq!(root_mode(remounted), Some("ro"));
        let switched = "rootfs / rootfs rw 0 0\n/dev/vda2 / squashfs ro,nodev,relatime 0 0\n";
        assert_eq!(root_mode(switched), Some("ro"));
        assert_eq!(root_mode(""), None);
    }

    #[test]
    fn terminals_are_found_by_controlling_tty_or_stdin() {
        // A debug shell on ttyS0 (4:64 -> tty_nr 16448).
        let shell = "97 (sh) S 1 97 97 16448 97 4194560 0 0 0 0";
        assert!(reads_a_terminal(shell, None));
        assert_eq!(comm(shell), "sh");
        // The server: its own session, no terminal, stdin /dev/null.
        let server = "42 (edge-runtime) S 1 42 42 0 -1 4194560 0 0";
        assert!(!reads_a_terminal(server, Some(Path::new("/dev/null"))));
        assert!(reads_a_terminal(server, Some(Path::new("/dev/console"))));
        assert!(reads_a_terminal(server, Some(Path::new("/dev/ttyAMA0"))));
        // A name with spaces and parentheses does not shift the fields.
        let odd = "7 (a) (b c) S 1 7 7 0 -1 0";
        assert!(!reads_a_terminal(odd, None));
        assert_eq!(comm(odd), "a) (b c");
    }
}
