//! Model updates in the image: the device config's `[runtime.model_updates]`, the public key
//! uploads are checked with (public, so world-readable), and the golden check a new version
//! must pass, taken from the recipe's first `[[test]]` that gives inputs.

use anyhow::{Context, Result};
use edge_config::{signing, GoldenCheck, GoldenTensor, ModelUpdates, DEFAULT_MODEL_STORE};

use super::model::PreparedModel;
use super::path;
use crate::plan::{ModelUpdatesPlan, Plan};
use crate::recipe::{flatten_numbers, input_values};
use crate::rootfs::{Meta, RootfsTree};

const PUBLIC_KEY: &str = "/etc/edgeimg/model-key.pub";

pub fn add_model_updates(
    plan: &Plan,
    updates: &ModelUpdatesPlan,
    model: Option<&PreparedModel>,
    tree: &mut RootfsTree,
    mtime: u64,
) -> Result<ModelUpdates> {
    let public_key_file = updates
        .public_key
        .as_ref()
        .map(|file| add_public_key("runtime.model_public_key", file, PUBLIC_KEY, tree, mtime))
        .transpose()?;
    Ok(ModelUpdates {
        store: DEFAULT_MODEL_STORE.to_string(),
        max_model_bytes: updates.max_model_bytes,
        public_key_file,
        golden: model.map(|m| golden_check(plan, m)).transpose()?.flatten(),
    })
}

/// Puts the ed25519 public key `file` (named by the recipe's `key`) at `dest` in the image,
/// world-readable; `dest` for the device config.
pub(super) fn add_public_key(
    key: &str,
    file: &std::path::Path,
    dest: &str,
    tree: &mut RootfsTree,
    mtime: u64,
) -> Result<String> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "reading {key} {} (make it with `edgeimg keygen`)",
            file.display()
        )
    })?;
    signing::parse_public_key(&text).map_err(|why| {
        anyhow::anyhow!(
            "{key} {} {why}; give the .pub file `edgeimg keygen` wrote",
            file.display()
        )
    })?;
    tree.add_file(
        path(dest),
        format!("{}\n", text.trim()).into_bytes(),
        Meta::root(0o444, mtime),
    )?;
    Ok(dest.to_string())
}

/// The first `[[test]]` with inputs, materialised for the model's frozen input shapes (its
/// `{ random = SEED }` inputs become the numbers `edgeimg test` would send). `None` when no
/// test gives inputs or an input's shape is not fixed: the device then checks one inference
/// on inputs of the declared shapes.
pub(super) fn golden_check(plan: &Plan, model: &PreparedModel) -> Result<Option<GoldenCheck>> {
    let Some(test) = plan.tests.iter().find(|t| !t.inputs.is_empty()) else {
        return Ok(None);
    };
    let mut inputs = Vec::new();
    for input in &model.info.inputs {
        // A picture is read by `edgeimg test` on the host, not carried into the image.
        let Some(value) = test.inputs.get(&input.name).filter(|v| !is_picture(v)) else {
            return Ok(None);
        };
        let Some(count) = input
            .dims
            .as_ref()
            .and_then(|dims| dims.iter().map(|d| d.fixed()).product::<Option<i64>>())
        else {
            return Ok(None);
        };
        let data = input_values(value, count as usize)
            .with_context(|| format!("[[test]] {:?} input {:?}", test.name, input.name))?;
        inputs.push(GoldenTensor {
            name: input.name.clone(),
            data,
        });
    }
    let expect = test
        .expect
        .iter()
        .map(|(name, value)| {
            Ok(GoldenTensor {
                name: name.clone(),
                data: flatten_numbers(value)
                    .with_context(|| format!("[[test]] {:?} expect.{name}", test.name))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(GoldenCheck {
        tolerance: test.tolerance(),
        inputs,
        expect,
    }))
}

/// `{ image = FILE, ... }`: a test input read from a picture.
fn is_picture(value: &toml::Value) -> bool {
    value.as_table().is_some_and(|t| t.contains_key("image"))
}
