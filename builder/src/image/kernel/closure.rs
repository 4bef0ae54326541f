//! What chosen modules need: their modules.dep dependencies and softdeps, until nothing new
//! comes, each with who needs it; the boot initramfs takes whatever its modules need.

use std::collections::BTreeMap;

use edge_init::modules::index::{ModuleIndex, Resolved};

use super::moddep::{parse_builtin, ModDep, ModuleName};
use super::modules::{modules_dir, read_text};
use super::{Loaded, ModuleError};
use crate::rootfs::RootfsTree;

/// A module chosen so far, before load order is known.
#[derive(Debug, Default)]
pub(super) struct Chosen {
    pub(super) reasons: Vec<String>,
    /// Modules that need it through modules.dep, and through softdeps.
    needed_by: Vec<String>,
    softdep_of: Vec<String>,
    pub(super) at_boot: bool,
    pub(super) by_device: bool,
    pub(super) in_boot_initramfs: bool,
}

impl Chosen {
    pub(super) fn add(list: &mut Vec<String>, item: String) {
        if !list.contains(&item) {
            list.push(item);
        }
    }

    pub(super) fn loaded(&self) -> Loaded {
        match (self.at_boot, self.by_device) {
            (true, _) => Loaded::AtBoot,
            (false, true) => Loaded::ByDevice,
            (false, false) => Loaded::AsNeeded,
        }
    }

    pub(super) fn into_reasons(self) -> Vec<String> {
        let mut reasons = self.reasons;
        if !self.needed_by.is_empty() {
            reasons.push(format!(
                "needed by {} (modules.dep)",
                self.needed_by.join(", ")
            ));
        }
        if !self.softdep_of.is_empty() {
            reasons.push(format!("softdep of {}", self.softdep_of.join(", ")));
        }
        reasons
    }
}

/// A kernel's module metadata as the build reads it.
pub(super) struct Metadata {
    pub(super) dep: ModDep,
    pub(super) builtin: BTreeMap<ModuleName, String>,
    /// The same files as init reads them: softdeps and aliases.
    pub(super) index: ModuleIndex,
}

impl Metadata {
    pub(super) fn read(tree: &RootfsTree, kver: &str) -> Result<Metadata, ModuleError> {
        let dir = modules_dir(kver)?;
        let dep_text = read_text(tree, &dir, "modules.dep", kver)?;
        let dep = ModDep::parse(&dep_text).map_err(|why| ModuleError::BadMetadata {
            path: format!("/{dir}/modules.dep"),
            why,
        })?;
        let optional = |file: &str| match read_text(tree, &dir, file, kver) {
            Ok(text) => Ok(text),
            Err(ModuleError::NoMetadata { .. }) => Ok(String::new()),
            Err(e) => Err(e),
        };
        let builtin_text = optional("modules.builtin")?;
        let index = ModuleIndex::parse(
            &dep_text,
            &optional("modules.alias")?,
            &optional("modules.softdep")?,
            &builtin_text,
        );
        Ok(Metadata {
            dep,
            builtin: parse_builtin(&builtin_text),
            index,
        })
    }

    /// Adds what the chosen modules need (modules.dep, softdeps), until nothing new comes,
    /// then carries the boot initramfs flag from each module to what it needs.
    pub(super) fn close_over_needs(
        &self,
        chosen: &mut BTreeMap<ModuleName, Chosen>,
    ) -> Result<(), ModuleError> {
        let mut queue: Vec<ModuleName> = chosen.keys().cloned().collect();
        let mut needs: Vec<(ModuleName, ModuleName)> = Vec::new();
        while let Some(name) = queue.pop() {
            let entry = self.dep.by_name(&name).expect("chosen from modules.dep");
            // (module, through a softdep)
            let mut wanted: Vec<(ModuleName, bool)> = Vec::new();
            for path in &entry.deps {
                let dep = self
                    .dep
                    .by_path(path)
                    .ok_or_else(|| ModuleError::UnknownDependency {
                        module: name.to_string(),
                        dep: path.clone(),
                    })?;
                wanted.push((dep.name.clone(), false));
            }
            if let Some(soft) = self.index.softdeps(name.as_str()) {
                for alias in soft.pre.iter().chain(&soft.post) {
                    if let Resolved::Modules(found) = self.index.resolve(alias) {
                        for module in found {
                            wanted.push((ModuleName::new(&module), true));
                        }
                    }
                }
            }
            for (module, soft) in wanted {
                needs.push((name.clone(), module.clone()));
                let entry = chosen.entry(module.clone()).or_insert_with(|| {
                    queue.push(module.clone());
                    Chosen::default()
                });
                let list = if soft {
                    &mut entry.softdep_of
                } else {
                    &mut entry.needed_by
                };
                Chosen::add(list, name.to_string());
            }
        }
        // Whatever a boot initramfs module needs goes there too.
        loop {
            let mut changed = false;
            for (user, needed) in &needs {
                if chosen[user].in_boot_initramfs && !chosen[needed].in_boot_initramfs {
                    chosen
                        .get_mut(needed)
                        .expect("added above")
                        .in_boot_initramfs = true;
                    changed = true;
                }
            }
            if !changed {
                return Ok(());
            }
        }
    }
}
