//! The console lines the device prints about its state, and what the harness makes of them.

use std::net::SocketAddr;
use std::time::Duration;

use crate::accel::Accel;
use crate::error::{Error, Result};

pub const READY_MARKER: &str = "EDGEIMG-READY";
pub use edge_config::OPTIMISED_MARKER;
pub const ERROR_MARKER: &str = "EDGEIMG-ERROR";
pub const POWEROFF_MARKER: &str = "EDGEIMG-POWEROFF";
pub const PANIC_MARKER: &str = "Kernel panic";
/// The kernel's last words of a panic report: the tail is complete after it.
pub const PANIC_END_MARKER: &str = "end Kernel panic";
/// The kernel could not unpack all of the initramfs; it boots on with what it got, so the
/// image is broken even when init happens to start.
pub const INITRAMFS_FAILED_MARKER: &str = "Initramfs unpacking failed";

/// `EDGEIMG-READY model=<name> listen=<addr> ms_since_boot=<n>`, as printed by the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    pub model: String,
    /// Where the server listens inside the guest.
    pub listen: SocketAddr,
    /// Guest-measured time from kernel start to ready.
    pub ms_since_boot: u64,
}

impl ReadyLine {
    /// Parse a console line holding the marker (anything before the marker is ignored, so a
    /// line interleaved with kernel output still counts; unknown keys are ignored).
    pub fn parse(line: &str) -> Result<ReadyLine> {
        let bad = |reason: &str| Error::BadReadyLine {
            line: line.to_string(),
            reason: reason.to_string(),
        };
        let (mut model, mut listen, mut ms) = (None, None, None);
        for field in
            marker_fields(line, READY_MARKER).ok_or_else(|| bad("no EDGEIMG-READY marker"))?
        {
            match field {
                ("model", v) => model = Some(v.to_string()),
                ("listen", v) => listen = Some(v),
                ("ms_since_boot", v) => ms = Some(v),
                _ => {}
            }
        }
        let model = model.ok_or_else(|| bad("missing model="))?;
        let listen = listen
            .ok_or_else(|| bad("missing listen="))?
            .parse()
            .map_err(|_| bad("listen= is not an IP:port address"))?;
        let ms_since_boot = parse_ms(ms, &bad)?;
        Ok(ReadyLine {
            model,
            listen,
            ms_since_boot,
        })
    }

    pub fn guest_boot_time(&self) -> Duration {
        Duration::from_millis(self.ms_since_boot)
    }
}

/// `EDGEIMG-OPTIMISED model=<name> ms=<n> ms_since_boot=<n>`: the server swapped a model's
/// optimised plan in for the quick one it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptimisedLine {
    pub model: String,
    /// Guest-measured time from kernel start to the optimised plan serving.
    pub ms_since_boot: u64,
}

impl OptimisedLine {
    pub fn parse(line: &str) -> Result<OptimisedLine> {
        let bad = |reason: &str| Error::BadReadyLine {
            line: line.to_string(),
            reason: reason.to_string(),
        };
        let (mut model, mut ms) = (None, None);
        for field in marker_fields(line, OPTIMISED_MARKER)
            .ok_or_else(|| bad("no EDGEIMG-OPTIMISED marker"))?
        {
            match field {
                ("model", v) => model = Some(v.to_string()),
                ("ms_since_boot", v) => ms = Some(v),
                _ => {}
            }
        }
        Ok(OptimisedLine {
            model: model.ok_or_else(|| bad("missing model="))?,
            ms_since_boot: parse_ms(ms, &bad)?,
        })
    }
}

/// The `key=value` fields after `marker` in `line` (anything before the marker is ignored, so
/// a line interleaved with kernel output still counts), or None without the marker.
fn marker_fields<'a>(
    line: &'a str,
    marker: &str,
) -> Option<impl Iterator<Item = (&'a str, &'a str)>> {
    let start = line.find(marker)?;
    Some(
        line[start + marker.len()..]
            .split_whitespace()
            .filter_map(|field| field.split_once('=')),
    )
}

fn parse_ms(value: Option<&str>, bad: &impl Fn(&str) -> Error) -> Result<u64> {
    value
        .ok_or_else(|| bad("missing ms_since_boot="))?
        .parse()
        .map_err(|_| bad("ms_since_boot= is not a whole number"))
}

/// A guest that reported ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub line: ReadyLine,
    /// Host-measured time from spawning QEMU to seeing the line.
    pub host_boot_to_ready: Duration,
    pub accel: Accel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ready_line_even_after_kernel_noise() {
        let r = ReadyLine::parse(
            "[  1.2] foo EDGEIMG-READY model=resnet listen=0.0.0.0:8000 ms_since_boot=1234 extra=1",
        )
        .unwrap();
        assert_eq!(r.model, "resnet");
        assert_eq!(r.listen, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(r.ms_since_boot, 1234);
    }

    #[test]
    fn names_what_is_wrong_with_a_bad_ready_line() {
        let err = ReadyLine::parse("EDGEIMG-READY model=m listen=nowhere ms_since_boot=1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen= is not an IP:port"), "{err}");
        let err = ReadyLine::parse("EDGEIMG-READY listen=1.2.3.4:5 ms_since_boot=1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing model="), "{err}");
    }

    #[test]
    fn parses_the_optimised_line_the_server_prints() {
        let line = format!("{OPTIMISED_MARKER} model=ppocr-cls ms=1700 ms_since_boot=4100");
        let parsed = OptimisedLine::parse(&format!("[  2.1] noise {line}")).unwrap();
        assert_eq!(parsed.model, "ppocr-cls");
        assert_eq!(parsed.ms_since_boot, 4100);
        let err = OptimisedLine::parse(&format!("{OPTIMISED_MARKER} model=m ms_since_boot=x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ms_since_boot= is not a whole number"),
            "{err}"
        );
    }
}
