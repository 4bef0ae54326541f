//! Identifiers (disk ids, partition and file-system UUIDs) derived from a seed such as the
//! image name, so that rebuilding an image gives it the same ids and init can find partitions
//! by PARTUUID without probing.

use sha2::{Digest, Sha256};
use uuid::Uuid;

fn digest(seed: &str, purpose: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"edgeimg-id\0");
    h.update(seed.as_bytes());
    h.update(b"\0");
    h.update(purpose.as_bytes());
    h.finalize().into()
}

/// A UUID (version-4 layout, so every tool accepts it) unique to `seed` + `purpose`.
pub fn derived_uuid(seed: &str, purpose: &str) -> Uuid {
    let d = digest(seed, purpose);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A non-zero 32-bit id (MBR disk signature, FAT volume id) unique to `seed` + `purpose`.
pub fn derived_u32(seed: &str, purpose: &str) -> u32 {
    let d = digest(seed, purpose);
    let v = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
    if v == 0 {
        1
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_distinct() {
        assert_eq!(
            derived_uuid("edge-pi", "disk"),
            derived_uuid("edge-pi", "disk")
        );
        assert_ne!(
            derived_uuid("edge-pi", "disk"),
            derived_uuid("edge-pi", "part1")
        );
        assert_eq!(derived_uuid("a", "b").get_version_num(), 4);
        assert_ne!(derived_u32("edge-pi", "mbr"), 0);
    }
}
