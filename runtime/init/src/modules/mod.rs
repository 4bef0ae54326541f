//! Kernel modules, loaded by what the hardware asks for: at boot every device's `modalias`
//! under `/sys` is matched against the image's `modules.alias` and its drivers are loaded with
//! their `modules.dep` dependencies and softdeps, again until nothing new appears (coldplug);
//! after boot the kernel's uevents do the same for devices that appear later (hotplug). The
//! modules the config lists (file systems, crypto, input handlers: nothing a device names)
//! are loaded too.

pub mod coldplug;
pub mod file;
pub mod hotplug;
pub mod index;
pub mod loader;
pub mod sysfs;

use std::path::Path;
use std::time::{Duration, Instant};

pub use coldplug::{Summary, Until};
pub use loader::Loader;

/// In the root, the most coldplug may take (devices that appear later are hotplug's).
const ROOT_DEADLINE: Duration = Duration::from_secs(15);

/// Boot in the real root: coldplug, the listed modules, then hotplug in the background.
pub fn load_at_boot(listed: &[String]) -> Summary {
    let listener = hotplug::Listener::open();
    let mut loader = Loader::for_running_kernel();
    let summary = coldplug::run(
        &mut loader,
        Path::new(sysfs::SYS),
        Until::NothingNew,
        Instant::now() + ROOT_DEADLINE,
    );
    for path in listed {
        loader.load_listed(path);
    }
    listener.spawn(loader);
    summary
}
