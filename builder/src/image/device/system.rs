//! A/B slots in the image: the device config's `[system]` (which partitions are the slots,
//! this image's version, the trial's deadline and golden check) and the public key system
//! updates must be signed with (public, so world-readable).

use anyhow::{Context, Result};
use edge_config::signing;
use edge_config::system::SystemConfig;

use super::model::PreparedModel;
use super::path;
use super::updates::golden_check;
use crate::image::disk::DiskPlan;
use crate::plan::Plan;
use crate::rootfs::{Meta, RootfsTree};

const PUBLIC_KEY: &str = "/etc/edgeimg/system-key.pub";

pub fn add_system(
    plan: &Plan,
    disk: &DiskPlan,
    model: Option<&PreparedModel>,
    tree: &mut RootfsTree,
    mtime: u64,
) -> Result<SystemConfig> {
    let public_key_file = match &plan.system_updates {
        Some(updates) => {
            let file = &updates.public_key;
            let text = std::fs::read_to_string(file).with_context(|| {
                format!(
                    "reading system_updates.public_key {} (make it with `edgeimg keygen`)",
                    file.display()
                )
            })?;
            signing::parse_public_key(&text).map_err(|why| {
                anyhow::anyhow!(
                    "system_updates.public_key {} {why}; give the .pub file `edgeimg keygen` wrote",
                    file.display()
                )
            })?;
            tree.add_file(
                path(PUBLIC_KEY),
                format!("{}\n", text.trim()).into_bytes(),
                Meta::root(0o444, mtime),
            )?;
            Some(PUBLIC_KEY.to_string())
        }
        None => None,
    };
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
