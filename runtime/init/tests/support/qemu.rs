//! Booting a kernel + initramfs in QEMU and following its serial console line by line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::alpine::Arch;

pub fn qemu_x86_64_available() -> bool {
    qemu_available(Arch::X86_64)
}

pub fn qemu_available(arch: Arch) -> bool {
    Command::new(arch.qemu_binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub struct Vm {
    child: Child,
    /// The serial console's input.
    console_in: ChildStdin,
    lines: Receiver<String>,
    /// Every console line so far, for failure messages.
    pub log: Vec<String>,
    monitor: PathBuf,
}

/// The guest's network card (virtio-net on QEMU's user network, the API port forwarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nic {
    /// Present from power-on, its link up.
    Plugged,
    /// None at boot: an empty PCIe slot, filled by [`Vm::plug_nic`] (a hot-plugged card).
    EmptySlot,
}

pub struct BootSpec<'a> {
    pub arch: Arch,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub append: &'a str,
    pub disk: Option<&'a Path>,
    pub nic: Nic,
    pub host_port: u16,
    pub guest_port: u16,
    pub monitor: &'a Path,
}

/// The card's QEMU id, for `set_link`.
const NIC_ID: &str = "nic0";

fn netdev(host_port: u16, guest_port: u16) -> String {
    format!("user,id=net0,hostfwd=tcp:127.0.0.1:{host_port}-:{guest_port}")
}

impl Vm {
    pub fn boot(spec: &BootSpec) -> Vm {
        let _ = std::fs::remove_file(spec.monitor);
        let mut command = Command::new(spec.arch.qemu_binary());
        match spec.arch {
            Arch::X86_64 => command.args(["-M", "q35"]),
            // cortex-a57: `max` emulates pointer authentication, which is slow under TCG.
            Arch::Aarch64 => command.args(["-M", "virt", "-cpu", "cortex-a57"]),
        };
        command
            .args(["-accel", "tcg", "-m", "256", "-smp", "1"])
            .args(["-nographic", "-no-reboot"])
            .arg("-kernel")
            .arg(spec.kernel)
            .arg("-initrd")
            .arg(spec.initrd)
            .arg("-append")
            .arg(spec.append)
            .arg("-monitor")
            .arg(format!(
                "unix:{},server=on,wait=off",
                spec.monitor.display()
            ));
        match spec.nic {
            Nic::Plugged => command
                .arg("-netdev")
                .arg(netdev(spec.host_port, spec.guest_port))
                .arg("-device")
                .arg(format!("virtio-net-pci,netdev=net0,id={NIC_ID}")),
            Nic::EmptySlot => command
                .arg("-device")
                .arg("pcie-root-port,id=slot0,chassis=1,slot=1"),
        };
        if let Some(disk) = spec.disk {
            command
                .arg("-drive")
                .arg(format!("file={},format=raw,if=virtio", disk.display()));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", spec.arch.qemu_binary()));
        let stdout = child.stdout.take().unwrap();
        let console_in = child.stdin.take().unwrap();
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
            console_in,
            lines,
            log: Vec::new(),
            monitor: spec.monitor.to_path_buf(),
        }
    }

    /// Plugs a network card into the empty slot of a [`Nic::EmptySlot`] boot.
    pub fn plug_nic(&mut self, host_port: u16, guest_port: u16) {
        self.monitor(&format!("netdev_add {}", netdev(host_port, guest_port)));
        self.monitor(&format!(
            "device_add virtio-net-pci,netdev=net0,id={NIC_ID},bus=slot0"
        ));
    }

    /// Pulls the card's cable (`false`) or plugs it back in.
    pub fn set_link(&mut self, up: bool) {
        self.monitor(&format!(
            "set_link {NIC_ID} {}",
            if up { "on" } else { "off" }
        ));
    }

    /// Like [`Vm::expect_line`], but a matching line printed earlier counts too.
    pub fn expect_line_anytime(&mut self, prefix: &str, timeout: Duration) -> String {
        let earlier = self
            .log
            .iter()
            .find_map(|line| line.find(prefix).map(|at| line[at..].to_string()));
        match earlier {
            Some(line) => line,
            None => self.expect_line(prefix, timeout),
        }
    }

    /// Waits for a console line containing `prefix` and returns it from there; panics with the console log on timeout.
    pub fn expect_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    // A shell prompt or a kernel message may share the line: match anywhere.
                    if let Some(at) = line.find(prefix) {
                        return line[at..].to_string();
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

    /// Types `text` on the serial console.
    pub fn type_on_console(&mut self, text: &str) {
        self.console_in.write_all(text.as_bytes()).unwrap();
        self.console_in.flush().unwrap();
    }

    /// Sends one human monitor command (e.g. `sendkey ctrl-alt-delete`) and waits until the
    /// monitor has taken it (its next prompt).
    pub fn monitor(&mut self, command: &str) {
        let mut stream =
            UnixStream::connect(&self.monitor).expect("connecting to the QEMU monitor");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Input sent before the banner's prompt can be dropped by the monitor.
        read_until_prompt(&mut stream, 1);
        writeln!(stream, "{command}").unwrap();
        read_until_prompt(&mut stream, 1);
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

/// Reads the monitor's output until `prompts` more `(qemu) ` prompts were seen (or timeout).
fn read_until_prompt(stream: &mut UnixStream, prompts: usize) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while seen.windows(7).filter(|w| w == b"(qemu) ").count() < prompts {
        match std::io::Read::read(stream, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}
