//! The serial console: a thread copies QEMU's stdout to the log file (and the terminal when
//! asked), keeps the last lines in memory and notes the device's state lines as they pass.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::ready::{
    ReadyLine, ERROR_MARKER, INITRAMFS_FAILED_MARKER, PANIC_END_MARKER, PANIC_MARKER,
    POWEROFF_MARKER, READY_MARKER,
};

/// Lines kept in memory for error reports and line searches (a kernel's boot log is a few
/// hundred lines; the whole console is in the log file).
const KEPT_LINES: usize = 2000;

/// A failure the guest announced on its console.
#[derive(Debug, Clone)]
pub(crate) enum GuestFailure {
    Panic(String),
    Error(String),
}

#[derive(Debug, Default)]
pub(crate) struct ConsoleState {
    lines: VecDeque<String>,
    /// Lines seen since boot (the deque keeps only the last ones).
    total: u64,
    partial: Vec<u8>,
    /// The first readiness line (or why it did not parse) and when it was seen.
    pub ready: Option<(Result<ReadyLine, String>, Instant)>,
    pub failure: Option<(GuestFailure, Instant)>,
    /// A panic report is complete (its end marker was printed).
    pub failure_complete: bool,
    /// When `EDGEIMG-POWEROFF` was printed.
    pub poweroff_seen: Option<Instant>,
    /// The kernel printed its final `reboot: ...` line (power down / halt).
    pub kernel_stopped: bool,
    /// QEMU closed its stdout: it has exited.
    pub closed: bool,
}

impl ConsoleState {
    fn take_line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let line = text.trim_end_matches(['\r', '\n']).to_string();
        if self.ready.is_none() && line.contains(READY_MARKER) {
            let parsed = ReadyLine::parse(&line).map_err(|e| e.to_string());
            self.ready = Some((parsed, Instant::now()));
        }
        if self.failure.is_none() {
            if line.contains(PANIC_MARKER) {
                self.failure = Some((GuestFailure::Panic(line.clone()), Instant::now()));
            } else if line.contains(ERROR_MARKER) || line.contains(INITRAMFS_FAILED_MARKER) {
                self.failure = Some((GuestFailure::Error(line.clone()), Instant::now()));
                self.failure_complete = true;
            }
        }
        if line.contains(PANIC_END_MARKER) {
            self.failure_complete = true;
        }
        if line.contains(POWEROFF_MARKER) && self.poweroff_seen.is_none() {
            self.poweroff_seen = Some(Instant::now());
        }
        if line.contains("reboot: Power down") || line.contains("reboot: System halted") {
            self.kernel_stopped = true;
        }
        if self.lines.len() == KEPT_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        self.total += 1;
    }

    /// Number of complete lines seen so far: a cursor for [`Self::find_from`].
    pub fn cursor(&self) -> u64 {
        self.total
    }

    /// The first kept line at or after `cursor` that contains `needle`, with its own cursor.
    pub fn find_from(&self, cursor: u64, needle: &str) -> Option<(u64, String)> {
        let first_kept = self.total - self.lines.len() as u64;
        let skip = cursor.saturating_sub(first_kept);
        self.lines
            .iter()
            .zip(first_kept..)
            .skip(skip as usize)
            .find(|(line, _)| line.contains(needle))
            .map(|(line, at)| (at, line.clone()))
    }

    fn take_bytes(&mut self, bytes: &[u8]) {
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            self.partial.extend_from_slice(chunk);
            if chunk.ends_with(b"\n") {
                let line = std::mem::take(&mut self.partial);
                self.take_line(&line);
            }
        }
    }

    /// The last `n` lines, including a line still being printed.
    pub fn tail(&self, n: usize) -> String {
        let mut lines: Vec<String> = self.lines.iter().cloned().collect();
        if !self.partial.is_empty() {
            lines.push(
                String::from_utf8_lossy(&self.partial)
                    .trim_end()
                    .to_string(),
            );
        }
        let skip = lines.len().saturating_sub(n);
        lines[skip..].join("\n")
    }
}

/// The console state shared between the reader thread and the VM handle.
#[derive(Debug, Default)]
pub(crate) struct Console {
    state: Mutex<ConsoleState>,
    changed: Condvar,
}

impl Console {
    pub fn lock(&self) -> MutexGuard<'_, ConsoleState> {
        // A poisoned lock only means a reader panicked mid-update; the text is still useful.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until the state changes or `max` passes.
    pub fn wait<'a>(
        &self,
        guard: MutexGuard<'a, ConsoleState>,
        max: Duration,
    ) -> MutexGuard<'a, ConsoleState> {
        match self.changed.wait_timeout(guard, max) {
            Ok((guard, _)) => guard,
            Err(e) => e.into_inner().0,
        }
    }

    pub fn tail(&self, n: usize) -> String {
        self.lock().tail(n)
    }

    /// Copy `source` (QEMU's stdout) until it closes.
    pub fn spawn_reader(
        self: &Arc<Self>,
        mut source: impl Read + Send + 'static,
        mut log: File,
        tee: bool,
    ) -> std::thread::JoinHandle<()> {
        let console = Arc::clone(self);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = match source.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let bytes = &buf[..n];
                // Logging is best effort: a full disk must not stop the guest's console.
                let _ = log.write_all(bytes);
                if tee {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(bytes);
                    let _ = out.flush();
                }
                console.lock().take_bytes(bytes);
                console.changed.notify_all();
            }
            let _ = log.flush();
            let mut state = console.lock();
            if !state.partial.is_empty() {
                let rest = std::mem::take(&mut state.partial);
                state.take_line(&rest);
            }
            state.closed = true;
            drop(state);
            console.changed.notify_all();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_reads_and_spots_markers() {
        let mut s = ConsoleState::default();
        s.take_bytes(b"boot\r\nEDGEIMG-REA");
        assert!(s.ready.is_none());
        s.take_bytes(b"DY model=m listen=0.0.0.0:8000 ms_since_boot=7\r\nEDGEIMG-POWEROFF\r\n");
        let (ready, _) = s.ready.clone().unwrap();
        assert_eq!(ready.unwrap().ms_since_boot, 7);
        assert!(s.poweroff_seen.is_some());
        assert_eq!(
            s.find_from(1, "POWER"),
            Some((2, "EDGEIMG-POWEROFF".into()))
        );
        assert_eq!(s.find_from(3, "POWER"), None);
        assert_eq!(
            s.find_from(0, "EDGEIMG-"),
            Some((
                1,
                "EDGEIMG-READY model=m listen=0.0.0.0:8000 ms_since_boot=7".into()
            ))
        );
        assert_eq!(
            s.find_from(2, "EDGEIMG-"),
            Some((2, "EDGEIMG-POWEROFF".into()))
        );
        assert_eq!(
            s.tail(2),
            "EDGEIMG-READY model=m listen=0.0.0.0:8000 ms_since_boot=7\nEDGEIMG-POWEROFF"
        );
    }

    #[test]
    fn a_panic_is_complete_after_its_end_marker() {
        let mut s = ConsoleState::default();
        s.take_bytes(b"Kernel panic - not syncing: No working init found.\n");
        assert!(matches!(s.failure, Some((GuestFailure::Panic(_), _))));
        assert!(!s.failure_complete);
        s.take_bytes(b"---[ end Kernel panic - not syncing: No working init found. ]---\n");
        assert!(s.failure_complete);
    }

    #[test]
    fn an_initramfs_the_kernel_could_not_unpack_fails_the_boot() {
        let mut s = ConsoleState::default();
        s.take_bytes(
            b"[    1.2] Initramfs unpacking failed: junk at the end of compressed archive\n",
        );
        assert!(
            matches!(&s.failure, Some((GuestFailure::Error(line), _)) if line.contains("junk at the end"))
        );
        assert!(s.failure_complete);
    }
}
