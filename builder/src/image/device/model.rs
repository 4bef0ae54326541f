//! The recipe's model: verified against its pinned sha256, checked, dims frozen, and put at
//! `/usr/share/edgeimg/models/<name>.onnx`.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::model::{freeze_model, ModelInfo};
use crate::plan::ModelPlan;
use crate::rootfs::{Meta, RootPath, RootfsTree};

#[derive(Debug, Clone)]
pub struct PreparedModel {
    pub name: String,
    /// sha256 of the recipe's file, before freezing.
    pub source_sha256: String,
    /// sha256 of the file in the image.
    pub sha256: String,
    pub path_in_image: RootPath,
    pub info: ModelInfo,
    /// The frozen model, as put in the image (for host-side comparisons).
    pub bytes: Vec<u8>,
}

pub fn add_model(plan: &ModelPlan, tree: &mut RootfsTree, mtime: u64) -> Result<PreparedModel> {
    let bytes = std::fs::read(&plan.path)
        .with_context(|| format!("cannot read the model {}", plan.path.display()))?;
    let source_sha256 = hex::encode(Sha256::digest(&bytes));
    if let Some(want) = &plan.sha256 {
        if *want != source_sha256 {
            bail!(
                "model {} has sha256 {source_sha256}, but the recipe pins {want}; if the new file is intended, update model.sha256",
                plan.path.display()
            );
        }
    }
    let (frozen, info) = freeze_model(&bytes, &plan.inputs)
        .with_context(|| format!("model {}", plan.path.display()))?;
    let path_in_image = RootPath::new(&format!("/usr/share/edgeimg/models/{}.onnx", plan.name))?;
    tree.add_file(
        path_in_image.clone(),
        frozen.clone(),
        Meta::root(0o644, mtime),
    )?;
    Ok(PreparedModel {
        name: plan.name.clone(),
        source_sha256,
        sha256: hex::encode(Sha256::digest(&frozen)),
        path_in_image,
        info,
        bytes: frozen,
    })
}
