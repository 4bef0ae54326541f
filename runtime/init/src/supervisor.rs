//! Starting the server unprivileged and the optional debug shell.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::unistd::Pid;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub path: String,
    pub args: Vec<String>,
    pub uid: u32,
    pub gid: u32,
}

impl ServerSpec {
    pub fn from_config(config: &edge_config::DeviceConfig) -> Self {
        ServerSpec {
            path: config.init.server_path.clone(),
            args: config.init.server_args.clone(),
            uid: config.init.server_uid,
            gid: config.init.server_gid,
        }
    }
}

/// Starts the server as `--config <device config> <args...>`, in its own session, as the
/// configured uid/gid with no supplementary groups, no capabilities and no way to gain any.
/// Its output goes to the console, but it never reads it: stdin is /dev/null.
pub fn spawn_server(spec: &ServerSpec) -> std::io::Result<Pid> {
    let (uid, gid) = (spec.uid, spec.gid);
    let mut command = Command::new(&spec.path);
    command
        .arg("--config")
        .arg(edge_config::DEVICE_CONFIG_PATH)
        .args(&spec.args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/")
        .current_dir("/")
        .stdin(Stdio::null());
    // SAFETY: the closure runs between fork and exec and only makes raw system calls.
    unsafe {
        command.pre_exec(move || drop_privileges(uid, gid));
    }
    let child = command.spawn()?;
    Ok(Pid::from_raw(child.id() as i32))
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Unblocks every signal: the mask survives exec, and init blocks the ones it reads from its
/// signalfd (std does not reset it), which would make the server deaf to SIGTERM.
fn unblock_all_signals() -> std::io::Result<()> {
    // SAFETY: an empty sigset_t filled by sigemptyset; both calls are async-signal-safe.
    unsafe {
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        check(libc::sigemptyset(empty.as_mut_ptr()))?;
        check(libc::sigprocmask(
            libc::SIG_SETMASK,
            empty.as_ptr(),
            std::ptr::null_mut(),
        ))
    }
}

/// Runs in the forked child: only async-signal-safe calls.
fn drop_privileges(uid: u32, gid: u32) -> std::io::Result<()> {
    unblock_all_signals()?;
    // SAFETY: plain system calls with valid arguments.
    unsafe {
        check(libc::setsid())?;
        // Empty the capability bounding set while we still hold CAP_SETPCAP; EINVAL marks
        // the end of the capabilities this kernel knows.
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 {
                break;
            }
        }
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setgid(gid))?;
        // Leaving uid 0 clears the permitted, effective and ambient capability sets.
        check(libc::setuid(uid))?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
    }
    Ok(())
}

/// The terminal behind /dev/console: the last name in `/sys/class/tty/console/active`
/// (`tty0 ttyS0` -> `ttyS0`), which is the one /dev/console writes to.
pub fn console_tty(active: &str) -> Option<&str> {
    active.split_whitespace().last()
}

/// A root shell on the console, for debugging images that ask for one. Like busybox's
/// `cttyhack`, it gets the real terminal (e.g. /dev/ttyS0) as its controlling terminal, so
/// job control and ctrl-c work.
pub fn spawn_debug_shell() -> std::io::Result<Pid> {
    let active = std::fs::read_to_string("/sys/class/tty/console/active").unwrap_or_default();
    let tty_path = match console_tty(&active) {
        Some(name) => format!("/dev/{name}"),
        None => "/dev/console".to_string(),
    };
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tty_path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{tty_path}: {e}")))?;
    let mut command = Command::new("/bin/sh");
    command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/")
        .env("TERM", "linux")
        .current_dir("/")
        .stdin(tty.try_clone()?)
        .stdout(tty.try_clone()?)
        .stderr(tty);
    // SAFETY: sigprocmask, setsid and ioctl are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            unblock_all_signals()?;
            check(libc::setsid())?;
            check(libc::ioctl(0, libc::TIOCSCTTY as _, 1))?;
            Ok(())
        });
    }
    let child = command.spawn()?;
    Ok(Pid::from_raw(child.id() as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_tty_is_the_last_active_console() {
        assert_eq!(console_tty("tty0 ttyS0\n"), Some("ttyS0"));
        assert_eq!(console_tty("ttyAMA0\n"), Some("ttyAMA0"));
        assert_eq!(console_tty(""), None);
    }
}
