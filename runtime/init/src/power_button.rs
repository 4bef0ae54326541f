//! The machine's power button, as one pipe the run loop polls beside its signals.
//!
//! A scanner thread looks for power keys for a few seconds after the modules are loaded
//! (devtmpfs creates `/dev/input/event*` and `/dev/gpiochip*` a little after a driver binds):
//! evdev devices that report KEY_POWER (the ACPI button on x86 q35 and on arm64 with ACPI)
//! and device-tree `gpio-keys` lines (arm64 `virt` without firmware). Each key found gets a
//! thread blocked in `read`; a press writes one byte into the pipe.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;

use crate::console;
use crate::gpio_key::{self, GpioKey};
use crate::input_event::{self, InputEvent};

/// How long after boot new power keys are looked for.
const SCAN_FOR: Duration = Duration::from_secs(5);
const SCAN_EVERY: Duration = Duration::from_millis(100);
const INPUT_DIR: &str = "/dev/input";

/// The read end of the press pipe: readable once the button was pressed.
pub struct PowerButton {
    presses: OwnedFd,
}

impl PowerButton {
    /// Starts looking for power keys in the background.
    pub fn watch() -> nix::Result<PowerButton> {
        let (presses, notify) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let notify = Arc::new(File::from(notify));
        std::thread::Builder::new()
            .name("power-button-scan".to_string())
            .spawn(move || scan(notify))
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)))?;
        Ok(PowerButton { presses })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.presses.as_fd()
    }

    /// Whether a press arrived since the last call (empties the pipe).
    pub fn pressed(&self) -> bool {
        let mut buf = [0u8; 16];
        let mut any = false;
        while let Ok(1..) = nix::unistd::read(&self.presses, &mut buf) {
            any = true;
        }
        any
    }
}

fn scan(notify: Arc<File>) {
    let deadline = Instant::now() + SCAN_FOR;
    let mut seen_inputs = BTreeSet::new();
    let mut gpio_keys = gpio_key::system_power_keys();
    let mut found = 0usize;
    while Instant::now() < deadline {
        // One line per pass, printed once every key of the pass is watched: a press after
        // it is never lost.
        let mut watched = Vec::new();
        for path in event_devices() {
            if seen_inputs.insert(path.clone()) && watch_input(&path, &notify) {
                watched.push(path.display().to_string());
            }
        }
        gpio_keys.retain(|key| match gpio_key::chip_for(&key.controller) {
            Some(chip) => {
                if watch_gpio(&chip, key, &notify) {
                    watched.push(format!("{} line {}", chip.display(), key.line));
                }
                false
            }
            None => true,
        });
        if !watched.is_empty() {
            found += watched.len();
            console::info(format!("power button: {}", watched.join(", ")));
        }
        std::thread::sleep(SCAN_EVERY);
    }
    if found == 0 {
        console::info("no power button found (are the evdev/button or gpio modules loaded?)");
    }
    for key in gpio_keys {
        console::error(
            "power-button",
            format!(
                "no GPIO chip for {} line {} (load the GPIO controller's module, e.g. gpio-pl061)",
                key.controller.display(),
                key.line
            ),
        );
    }
}

fn event_devices() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(INPUT_DIR) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("event"))
        .map(|e| e.path())
        .collect();
    paths.sort();
    paths
}

/// Watches one evdev device if it has a power key; returns whether it does.
fn watch_input(path: &Path, notify: &Arc<File>) -> bool {
    let Ok(mut device) = File::open(path) else {
        return false;
    };
    if !input_event::has_power_key(&device).unwrap_or(false) {
        return false;
    }
    let notify = Arc::clone(notify);
    spawn_reader(move || {
        let mut event = [0u8; input_event::EVENT_SIZE];
        while device.read_exact(&mut event).is_ok() {
            if InputEvent::parse(&event).is_power_press() {
                press(&notify);
            }
        }
    })
}

/// Watches one device-tree GPIO power key; returns whether the line could be requested.
fn watch_gpio(chip: &Path, key: &GpioKey, notify: &Arc<File>) -> bool {
    let mut line = match gpio_key::request_edges(chip, key) {
        Ok(line) => line,
        Err(error) => {
            console::error(
                "power-button",
                format!("{} line {}: {error}", chip.display(), key.line),
            );
            return false;
        }
    };
    let notify = Arc::clone(notify);
    spawn_reader(move || {
        let mut event = [0u8; gpio_key::LINE_EVENT_SIZE];
        while line.read_exact(&mut event).is_ok() {
            if gpio_key::is_press(&event) {
                press(&notify);
            }
        }
    })
}

fn spawn_reader(read_loop: impl FnOnce() + Send + 'static) -> bool {
    std::thread::Builder::new()
        .name("power-button".to_string())
        .spawn(read_loop)
        .is_ok()
}

fn press(notify: &File) {
    // A full pipe already holds a press: dropping this one loses nothing.
    let _ = (&*notify).write(&[1]);
}
