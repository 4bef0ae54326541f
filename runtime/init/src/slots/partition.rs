//! The boot and root partitions, found by PARTUUID as the data partition is.

use std::path::PathBuf;

use edge_config::system::SystemConfig;

use crate::data;

/// The block devices of the boot partition and of each slot's root.
#[derive(Debug, Clone)]
pub struct Devices {
    pub boot: PathBuf,
    pub roots: [PathBuf; 2],
}

/// Finds every partition `system` names; which one is missing, if one is.
pub fn find(system: &SystemConfig) -> Result<Devices, String> {
    let by_uuid = |what: &str, uuid: &str| {
        data::find_by(None, Some(uuid))
            .ok_or_else(|| format!("no block device has the {what} PARTUUID {uuid}"))
    };
    Ok(Devices {
        boot: by_uuid("boot partition's", &system.boot_partuuid)?,
        roots: [
            by_uuid("slot a root's", &system.root_partuuids[0])?,
            by_uuid("slot b root's", &system.root_partuuids[1])?,
        ],
    })
}
