//! The `edgeimg.*` flags on the kernel command line: how tests steer init from outside.

/// What the kernel command line asks of init.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    /// `edgeimg.selftest=kill-server`: kill the server once after the first READY line.
    pub kill_server_once: bool,
    /// `edgeimg.poweroff_after_ready=1`: power off right after the first READY line.
    pub poweroff_after_ready: bool,
    /// `edgeimg.debug_shell=1` was given. It is refused (see [`DEBUG_SHELL_REFUSED`]).
    pub debug_shell_asked: bool,
    /// `root=PARTUUID=...`: in a boot initramfs, the partition to switch to (disk boots).
    pub root: Option<String>,
    /// `edgeimg.slot=a|b`: the A/B slot this kernel was booted from (its `cmdline.txt` says).
    pub slot: Option<String>,
    /// `edgeimg.*` words this init does not know; reported so a typo is noticed.
    pub unknown: Vec<String>,
}

/// Why `edgeimg.debug_shell` on the command line opens nothing. Whoever can change the kernel
/// command line (the Pi's `cmdline.txt` on the FAT partition, a bootloader prompt on the serial
/// console, the QEMU command) must not get a root shell from it: the console shell is a build
/// choice the image carries (`runtime.debug_shell = true` in the recipe).
pub const DEBUG_SHELL_REFUSED: &str = "edgeimg.debug_shell is ignored: the console shell is a build-time choice (set runtime.debug_shell = true in the recipe and rebuild)";

/// Parses `/proc/cmdline` text. Words that are not `edgeimg.*` belong to the kernel and others.
pub fn parse(cmdline: &str) -> Flags {
    let mut flags = Flags::default();
    for word in cmdline.split_whitespace() {
        if let Some(root) = word.strip_prefix("root=") {
            flags.root = Some(root.to_string());
            continue;
        }
        let Some(setting) = word.strip_prefix("edgeimg.") else {
            continue;
        };
        let (key, value) = setting.split_once('=').unwrap_or((setting, "1"));
        match (key, value) {
            ("selftest", "kill-server") => flags.kill_server_once = true,
            ("poweroff_after_ready", v) => flags.poweroff_after_ready = is_true(v),
            ("debug_shell", v) => flags.debug_shell_asked = is_true(v),
            ("slot", v) if edge_config::system::SLOTS.contains(&v) => {
                flags.slot = Some(v.to_string())
            }
            _ => flags.unknown.push(word.to_string()),
        }
    }
    flags
}

fn is_true(value: &str) -> bool {
    matches!(value, "1" | "yes" | "true" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_edgeimg_flags_and_ignores_kernel_words() {
        let flags = parse(
            "console=ttyS0 quiet edgeimg.selftest=kill-server edgeimg.poweroff_after_ready=1\n",
        );
        assert!(flags.kill_server_once);
        assert!(flags.poweroff_after_ready);
        assert!(!flags.debug_shell_asked);
        assert!(flags.unknown.is_empty());
        assert_eq!(flags.root, None);
    }

    #[test]
    fn root_partition_comes_from_the_kernel_root_word() {
        let flags = parse("console=ttyS1 root=PARTUUID=6c2a0f13-02 rootfstype=squashfs ro");
        assert_eq!(flags.root.as_deref(), Some("PARTUUID=6c2a0f13-02"));
    }

    #[test]
    fn the_slot_is_a_or_b() {
        assert_eq!(parse("edgeimg.slot=b").slot.as_deref(), Some("b"));
        let flags = parse("edgeimg.slot=c");
        assert_eq!(flags.slot, None);
        assert_eq!(flags.unknown, vec!["edgeimg.slot=c"]);
    }

    #[test]
    fn bare_flag_means_on_and_zero_means_off() {
        let flags = parse("edgeimg.debug_shell edgeimg.poweroff_after_ready=0");
        assert!(flags.debug_shell_asked);
        assert!(!flags.poweroff_after_ready);
    }

    #[test]
    fn unknown_edgeimg_words_are_reported() {
        let flags = parse("edgeimg.selftest=explode edgeimg.colour=red");
        assert!(!flags.kill_server_once);
        assert_eq!(
            flags.unknown,
            vec!["edgeimg.selftest=explode", "edgeimg.colour=red"]
        );
    }
}
