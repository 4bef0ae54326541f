//! A/B slots in the image: the device config's `[system]` (which partitions are the slots,
//! this image's version, the trial's deadline and golden check) and the public key system
//! updates must be signed with (public, so world-readable).

use anyhow::Result;
use edge_config::system::SystemConfig;

use super::model::PreparedModel;
use super::updates::{add_public_key, golden_check};
use crate::image::disk::DiskPlan;
use crate::plan::Plan;
use crate::rootfs::RootfsTree;

const PUBLIC_KEY: &str = "/etc/edgeimg/system-key.pub";

pub fn add_system(
    plan: &Plan,
    disk: &DiskPlan,
    model: Option<&PreparedModel>,
    tree: &mut RootfsTree,
    mtime: u64,
) -> Result<SystemConfig> {
    let public_key_file = plan
        .system_updates
        .as_ref()
        .map(|u| {
            add_public_key(
                "system_updates.public_key",
                &u.public_key,
                PUBLIC_KEY,
                tree,
                mtime,
            )
        })
        .transpose()?;
    let mut config = disk.system_config(plan, public_key_file);
    if plan.system_updates.is_some() {
        // The trial boot's gate: the first model answers the recipe's first test.
        if let Some(model) = model {
            config.golden = golden_check(plan, model)?;
            config.golden_model = config.golden.as_ref().map(|_| model.name.clone());
        }
    }
    Ok(config)
}
