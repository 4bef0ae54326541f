//! A plan's recipe with some keys changed: the update a `system_update` check builds, or the
//! same appliance on another board for the benchmark.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{Overrides, Plan};
use crate::recipe::{with_keys_set, LoadedRecipe};

impl Plan {
    /// This plan's recipe with `set`'s dotted keys replaced (on top of those this plan
    /// already replaced), planned into `out_dir` with the same mirror, trusted keys and build
    /// date.
    pub fn variant(&self, set: &BTreeMap<String, toml::Value>, out_dir: PathBuf) -> Result<Plan> {
        let text = std::fs::read_to_string(&self.recipe_path)
            .with_context(|| format!("reading {}", self.recipe_path.display()))?;
        let mut keys_set = self.keys_set.clone();
        keys_set.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        let text = with_keys_set(&text, &keys_set).map_err(anyhow::Error::msg)?;
        // Parsed as if it were the recipe's own file: its relative paths mean the same.
        let loaded = LoadedRecipe::parse(&self.recipe_path, text)?;
        let mut plan = Plan::new(
            &loaded,
            &Overrides {
                out_dir: Some(out_dir),
                mirror: Some(self.alpine.mirror.clone()),
                trusted_keys: self.alpine.extra_keys.clone(),
                source_date_epoch: Some(self.source_date_epoch),
                lock: None,
            },
        )?;
        plan.keys_set = keys_set;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_of_a_variant_keeps_the_keys_replaced_before() {
        let dir = tempfile::tempdir().unwrap();
        let plan = crate::plan::plan_of_recipe(
            dir.path(),
            "[image]\nname = \"d\"\nboard = \"qemu-aarch64\"\nversion = \"1\"\n\
            [model]\npath = \"model.onnx\"\n",
        );
        let value = |v: &str| toml::Value::String(v.to_string());
        let on_x86 = plan
            .variant(
                &BTreeMap::from([("image.board".to_string(), value("qemu-x86_64"))]),
                dir.path().join("x86"),
            )
            .unwrap();
        let update = on_x86
            .variant(
                &BTreeMap::from([("image.version".to_string(), value("2"))]),
                dir.path().join("x86-v2"),
            )
            .unwrap();
        assert_eq!(update.board.name(), "qemu-x86_64");
        assert_eq!(update.version, "2");
        assert_eq!(update.out_dir, dir.path().join("x86-v2"));
        assert_eq!(plan.board.name(), "qemu-aarch64");
    }
}
