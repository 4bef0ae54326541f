//! Starting the server unprivileged and the optional debug shell.

use std::os::unix::process::CommandExt;
use std::process::Command;

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
        .current_dir("/");
    // SAFETY: the closure runs between fork and exec and only makes raw system calls.
    unsafe {
        command.pre_exec(move || drop_privileges(uid, gid));
    }
    // std resets the signal mask and dispositions in the child, so init's blocked signals
    // do not leak into the server.
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

/// Runs in the forked child: only async-signal-safe calls.
fn drop_privileges(uid: u32, gid: u32) -> std::io::Result<()> {
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

/// A root shell on the console, for debugging images that ask for one.
pub fn spawn_debug_shell() -> std::io::Result<Pid> {
    let mut command = Command::new("/bin/sh");
    command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", "/")
        .env("TERM", "linux")
        .current_dir("/");
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            check(libc::setsid())?;
            // Make the console our controlling terminal so ctrl-c reaches the shell's jobs.
            libc::ioctl(0, libc::TIOCSCTTY as _, 1);
            Ok(())
        });
    }
    let child = command.spawn()?;
    Ok(Pid::from_raw(child.id() as i32))
}
