//! The console lines tests and humans read: `EDGEIMG-<EVENT> key=value ...`.
//!
//! Lines go to stdout and, when stdout is not already the console, to `/dev/console` too, so a
//! line is never lost and never printed twice.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

const CONSOLE: &str = "/dev/console";

/// Prints one line on the console.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
    if !stdout_is_console() {
        if let Ok(mut console) = OpenOptions::new().write(true).open(CONSOLE) {
            let _ = writeln!(console, "{text}");
        }
    }
}

/// `EDGEIMG-ERROR <what> <why>`: what failed (one token) and why (free text on one line).
pub fn error(what: &str, why: impl std::fmt::Display) {
    let why = why.to_string().replace('\n', " ");
    line(&format!("EDGEIMG-ERROR {what} {why}"));
}

/// An informational line for humans (`edge-init: ...`), not part of the machine protocol.
pub fn info(text: impl std::fmt::Display) {
    line(&format!("edge-init: {text}"));
}

fn stdout_is_console() -> bool {
    let Ok(stdout) = std::fs::metadata("/proc/self/fd/1") else {
        // Without /proc we cannot tell; the kernel gives PID 1 the console as stdout.
        return true;
    };
    match std::fs::metadata(CONSOLE) {
        Ok(console) => {
            stdout.file_type().is_char_device()
                && console.file_type().is_char_device()
                && stdout.rdev() == console.rdev()
        }
        Err(_) => true,
    }
}
