//! Coldplug, as udev/mdev do it at boot: load the driver of every device already in sysfs,
//! then look again, since a driver brings new devices (a USB controller its USB devices, an
//! MDIO bus its PHYs), until the caller has what it waits for or nothing new appears.
//!
//! A look that loaded something is followed by another at once: a driver probes the devices it
//! finds while it loads, so what it brought is in sysfs by then. Only a look that found nothing
//! new waits before the next (a slow bus still enumerating); devices later than that are the
//! hotplug listener's, which was opened before the first look.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::loader::Loader;
use super::sysfs;

/// Between two looks at sysfs that found nothing new, while the caller still waits.
const RESCAN: Duration = Duration::from_millis(150);

/// How a coldplug run went, for the boot's progress line.
#[derive(Debug, Default)]
pub struct Summary {
    pub devices: usize,
    pub loaded: Vec<String>,
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} devices, {} modules loaded for them ({}) in {} ms",
            self.devices,
            self.loaded.len(),
            if self.loaded.is_empty() {
                "none".to_string()
            } else {
                self.loaded.join(" ")
            },
            self.elapsed.as_millis()
        )
    }
}

/// When a run ends (besides its deadline).
pub enum Until<'a> {
    /// A look at sysfs found no device it had not seen (later ones are hotplug's).
    NothingNew,
    /// The caller found what it waits for (e.g. the root partition).
    Found(&'a mut dyn FnMut() -> bool),
}

/// Loads drivers for the devices sysfs (mounted at `sys`) lists until `until` or `deadline`.
pub fn run(loader: &mut Loader, sys: &Path, until: Until, deadline: Instant) -> Summary {
    let started = Instant::now();
    let first_loaded = loader.newly_loaded.len();
    // Devices by their index entry: a second look reads only the modaliases of new ones.
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut devices = 0;
    let mut until = until;
    loop {
        let mut changed = false;
        if loader.has_index() {
            for link in sysfs::device_links(sys) {
                if seen.contains(&link) {
                    continue;
                }
                if let Some(modalias) = sysfs::device_modalias(&link) {
                    loader.load_for_modalias(&modalias);
                    devices += 1;
                    changed = true;
                }
                seen.insert(link);
            }
        }
        let done = match &mut until {
            Until::NothingNew => !changed,
            Until::Found(found) => found(),
        };
        if done || Instant::now() >= deadline {
            return Summary {
                devices,
                loaded: loader.newly_loaded[first_loaded..].to_vec(),
                elapsed: started.elapsed(),
            };
        }
        if !changed {
            std::thread::sleep(RESCAN.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}
