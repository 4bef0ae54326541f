//! How long each build stage took, on stderr with `EDGEIMG_LOG=debug`: where a build's time
//! goes, without a profiler.

use std::time::Instant;

/// Run `work`, then log its wall time under `what`.
pub fn timed<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = work();
    tracing::debug!("{what}: {} ms", started.elapsed().as_millis());
    out
}
