//! Booting a kernel + initramfs in QEMU and following its serial console line by line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub fn qemu_x86_64_available() -> bool {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub struct Vm {
    child: Child,
    lines: Receiver<String>,
    /// Every console line so far, for failure messages.
    pub log: Vec<String>,
    monitor: PathBuf,
}

pub struct BootSpec<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub append: &'a str,
    pub disk: Option<&'a Path>,
    pub host_port: u16,
    pub guest_port: u16,
    pub monitor: &'a Path,
}

impl Vm {
    pub fn boot(spec: &BootSpec) -> Vm {
        let _ = std::fs::remove_file(spec.monitor);
        let mut command = Command::new("qemu-system-x86_64");
        command
            .args(["-M", "q35", "-accel", "tcg", "-m", "256", "-smp", "1"])
            .args(["-nographic", "-no-reboot"])
            .arg("-kernel")
            .arg(spec.kernel)
            .arg("-initrd")
            .arg(spec.initrd)
            .arg("-append")
            .arg(spec.append)
            .arg("-nic")
            .arg(format!(
                "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{}-:{}",
                spec.host_port, spec.guest_port
            ))
            .arg("-monitor")
            .arg(format!(
                "unix:{},server=on,wait=off",
                spec.monitor.display()
            ));
        if let Some(disk) = spec.disk {
            command
                .arg("-drive")
                .arg(format!("file={},format=raw,if=virtio", disk.display()));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting qemu-system-x86_64");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line.trim_end_matches('\r').to_string()).is_err() {
                    break;
                }
            }
        });
        Vm {
            child,
            lines,
            log: Vec::new(),
            monitor: spec.monitor.to_path_buf(),
        }
    }

    /// Waits for a console line starting with `prefix`; panics with the console log on timeout.
    pub fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no {prefix:?} line within {timeout:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("QEMU ended before a {prefix:?} line"))
                }
            }
        }
    }

    /// Sends one human monitor command (e.g. `sendkey ctrl-alt-delete`).
    pub fn monitor(&mut self, command: &str) {
        let mut stream =
            UnixStream::connect(&self.monitor).expect("connecting to the QEMU monitor");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        writeln!(stream, "{command}").unwrap();
        // Let the monitor read the command before the connection closes.
        let mut banner = [0u8; 256];
        let _ = std::io::Read::read(&mut stream, &mut banner);
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Waits for QEMU to exit (the guest powered off) and returns whether it exited cleanly.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            while let Ok(line) = self.lines.try_recv() {
                self.log.push(line);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.log.push(line);
                }
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.fail(&format!(
            "QEMU still running {timeout:?} after power-off was asked"
        ))
    }

    pub fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        panic!("{why}\n--- console ---\n{}", self.log.join("\n"));
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
