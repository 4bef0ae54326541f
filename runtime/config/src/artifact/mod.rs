//! The system update artifact (`<name>.update`): written by the builder, checked by the server
//! as it arrives and again by init before it writes a slot.
//!
//! A tar (the `tar` crate, so it streams in both directions): [`MANIFEST`](crate::system::MANIFEST), [`MANIFEST_SIG`](crate::system::MANIFEST_SIG),
//! then every part of the manifest in its order. The signature covers the manifest, and the
//! manifest the size and sha256 of every part, so one signature check before the first part
//! and one hash per part as it streams cover every byte.

mod error;
mod read;
mod write;

#[cfg(test)]
mod tests;

pub use error::{ArtifactError, ErrorClass};
pub use read::{read_artifact, read_manifest, MAX_MANIFEST_BYTES};
pub use write::{write_artifact, ArtifactHead};

use crate::system::{BOOT_PREFIX, ROOT_MEMBER, SLOTS, SLOT_PREFIX};

/// Where a part goes on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// The inactive slot's root partition.
    Root,
    /// `<slot>/<path>` on the boot partition, whichever slot is written.
    Boot(&'a str),
    /// `<slot>/<path>` on the boot partition, only when `slot` is the one written.
    SlotBoot { slot: &'static str, path: &'a str },
}

/// Where the part named `name` goes, or `None` if no part may have that name (not one of
/// [`ROOT_MEMBER`], `boot/...`, `slot-a/...`, `slot-b/...`, or a path that could leave its
/// slot's folder).
pub fn destination(name: &str) -> Option<Destination<'_>> {
    if name == ROOT_MEMBER {
        return Some(Destination::Root);
    }
    if let Some(path) = name.strip_prefix(BOOT_PREFIX) {
        return plain_path(path).then_some(Destination::Boot(path));
    }
    let rest = name.strip_prefix(SLOT_PREFIX)?;
    SLOTS.iter().find_map(|&slot| {
        let path = rest.strip_prefix(slot)?.strip_prefix('/')?;
        plain_path(path).then_some(Destination::SlotBoot { slot, path })
    })
}

/// A relative path of plain names: nothing a FAT folder could be escaped or confused with.
fn plain_path(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'))
}

/// Lower-case hex of a digest (two lines; not worth the `hex` crate here).
fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
