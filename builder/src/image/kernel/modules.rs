//! Choosing kernel modules: what the image asks for (see [`super::select`]) with its
//! `modules.dep` dependencies and softdeps, in load order, each with why it is there and
//! whether the boot initramfs carries it; and a `/lib/modules/<kver>/` pruned to exactly
//! those, decompressed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;

use edge_init::modules::index::ModuleIndex;

use super::closure::{Chosen, Metadata};
use super::index_files::index_files;
use super::moddep::{DepEntry, ModDep, ModuleName};
use crate::plan::{ModuleRequest, ModuleUse};
use crate::rootfs::{FileData, RootPath, RootfsTree};

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("kernel {kver} has no module {name:?} (neither in modules.dep nor built in), asked for by {why}{}", hint(.close))]
    Missing {
        name: String,
        kver: String,
        why: String,
        close: Vec<String>,
    },
    #[error("{path} is missing from the image; is the kernel package for {kver} installed (or the version wrong)?")]
    NoMetadata { path: String, kver: String },
    #[error("{path} is not valid: {why}")]
    BadMetadata { path: String, why: String },
    #[error("module {module} needs {dep}, which modules.dep does not list; the modules tree is inconsistent")]
    UnknownDependency { module: String, dep: String },
    #[error("modules.dep has a dependency cycle through {0}")]
    Cycle(String),
    #[error("cannot decompress {path}: {why}")]
    Decompress { path: String, why: String },
    #[error("cannot update the image tree: {0}")]
    Tree(#[from] crate::rootfs::TreeError),
}

fn hint(close: &[String]) -> String {
    if close.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", close.join(", "))
    }
}

/// One module the image ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub name: ModuleName,
    /// Where it is in the image after [`ModuleSet::prune_tree`]: always an uncompressed `.ko`.
    pub path: RootPath,
    /// Why it is there, each reason once.
    pub reasons: Vec<String>,
    pub loaded: Loaded,
    /// The boot initramfs carries it too (it is on the way to the root partition).
    pub in_boot_initramfs: bool,
    /// As modules.dep had it (relative, possibly `.ko.gz`).
    pub(super) source_path: String,
}

/// When init loads a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// At every boot, by name.
    AtBoot,
    /// When a device's modalias matches one of its aliases.
    ByDevice,
    /// With a module that needs it.
    AsNeeded,
}

impl Loaded {
    pub fn describe(self) -> &'static str {
        match self {
            Loaded::AtBoot => "at boot",
            Loaded::ByDevice => "by device",
            Loaded::AsNeeded => "as needed",
        }
    }
}

/// The modules an image ships, dependencies first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSet {
    pub kernel_version: String,
    /// Load order: every module comes after everything it depends on.
    pub modules: Vec<Module>,
    /// Requested names the kernel has built in (nothing to load).
    pub builtin: Vec<ModuleName>,
}

impl ModuleSet {
    /// Resolve `requests` against `/lib/modules/<kver>/` in `tree`: each with its
    /// `modules.dep` dependencies and its softdeps (names or aliases, as modprobe resolves
    /// them), which go wherever the modules that need them go. A requested name that is
    /// neither a module nor built in is an error.
    pub fn resolve(
        tree: &RootfsTree,
        kver: &str,
        requests: &[ModuleRequest],
    ) -> Result<ModuleSet, ModuleError> {
        let metadata = Metadata::read(tree, kver)?;
        let mut chosen: BTreeMap<ModuleName, Chosen> = BTreeMap::new();
        let mut builtin_hits = Vec::new();
        for request in requests {
            let name = ModuleName::new(&request.name);
            if metadata.dep.by_name(&name).is_none() {
                if metadata.builtin.contains_key(&name) {
                    if !builtin_hits.contains(&name) {
                        builtin_hits.push(name);
                    }
                    continue;
                }
                return Err(ModuleError::Missing {
                    close: close_names(&name, metadata.dep.names().chain(metadata.builtin.keys())),
                    name: request.name.clone(),
                    kver: kver.to_string(),
                    why: request.why.clone(),
                });
            }
            let entry = chosen.entry(name).or_default();
            Chosen::add(&mut entry.reasons, request.why.clone());
            entry.at_boot |= request.used == ModuleUse::AtBoot;
            entry.by_device |= request.used == ModuleUse::ByDevice;
            entry.in_boot_initramfs |= request.in_boot_initramfs;
        }
        metadata.close_over_needs(&mut chosen)?;

        let mut order: Vec<&DepEntry> = Vec::new();
        let mut done = HashSet::new();
        for name in chosen.keys() {
            let entry = metadata.dep.by_name(name).expect("chosen from modules.dep");
            visit(&metadata.dep, entry, &mut done, &mut Vec::new(), &mut order)?;
        }
        let dir = modules_dir(kver)?;
        let modules = order
            .iter()
            .map(|e| {
                let choice = chosen.remove(&e.name).unwrap_or_default();
                Ok(Module {
                    name: e.name.clone(),
                    path: module_path(&dir, &decompressed_name(&e.path))?,
                    loaded: choice.loaded(),
                    in_boot_initramfs: choice.in_boot_initramfs,
                    reasons: choice.into_reasons(),
                    source_path: e.path.clone(),
                })
            })
            .collect::<Result<_, ModuleError>>()?;
        Ok(ModuleSet {
            kernel_version: kver.to_string(),
            modules,
            builtin: builtin_hits,
        })
    }

    /// The modules' paths as `modules.dep` has them (relative to `/lib/modules/<kver>/`, still
    /// compressed where the package compressed them), in load order.
    pub fn source_paths(&self) -> Vec<String> {
        self.modules.iter().map(|m| m.source_path.clone()).collect()
    }

    /// Leave in `/lib/modules/<kver>/` only this set's modules (decompressed, since linux-virt
    /// cannot load compressed ones) and the `modules.*` files cut down to match (see
    /// [`index_files`]).
    pub fn prune_tree(&self, tree: &mut RootfsTree) -> Result<(), ModuleError> {
        let dir = modules_dir(&self.kernel_version)?;
        // Read everything we keep before clearing the directory.
        let mut new_files = index_files(tree, &self.kernel_version, self.modules.iter())?;
        for module in &self.modules {
            let src = &module.source_path;
            let at = module_path(&dir, src)?;
            let node = tree.get(&at).ok_or_else(|| ModuleError::NoMetadata {
                path: at.to_absolute(),
                kver: self.kernel_version.clone(),
            })?;
            let data = tree
                .file_data(&at)
                .ok_or_else(|| ModuleError::BadMetadata {
                    path: at.to_absolute(),
                    why: "not a regular file".into(),
                })?;
            let plain = decompress(src, data).map_err(|why| ModuleError::Decompress {
                path: at.to_absolute(),
                why,
            })?;
            new_files.insert(decompressed_name(src), (plain, node.meta.clone()));
        }
        let root = module_path(&dir, "")?;
        let dir_meta = tree.get(&root).map(|n| n.meta.clone());
        tree.remove(&root);
        if let Some(meta) = dir_meta {
            tree.add_dir(root.clone(), meta)?;
        }
        for (rel, (data, meta)) in new_files {
            tree.add_file(module_path(&dir, &rel)?, FileData::from(data), meta)?;
        }
        Ok(())
    }

    /// Resolve, then prune: the usual one call.
    pub fn install(
        tree: &mut RootfsTree,
        kver: &str,
        requests: &[ModuleRequest],
    ) -> Result<ModuleSet, ModuleError> {
        let set = ModuleSet::resolve(tree, kver, requests)?;
        set.prune_tree(tree)?;
        Ok(set)
    }

    pub fn names(&self) -> impl Iterator<Item = &ModuleName> {
        self.modules.iter().map(|m| &m.name)
    }

    /// The kernel's module index (aliases, softdeps), as init reads it on the device.
    pub fn index(tree: &RootfsTree, kver: &str) -> Result<ModuleIndex, ModuleError> {
        Ok(Metadata::read(tree, kver)?.index)
    }

    /// What the boot initramfs carries.
    pub fn boot_initramfs(&self) -> impl Iterator<Item = &Module> {
        self.modules.iter().filter(|m| m.in_boot_initramfs)
    }
}

/// Depth-first, dependencies first. depmod lists a module's deps nearest-last, so walking them
/// in reverse loads the deepest first, as modprobe does.
fn visit<'a>(
    dep: &'a ModDep,
    entry: &'a DepEntry,
    done: &mut HashSet<&'a str>,
    stack: &mut Vec<&'a str>,
    order: &mut Vec<&'a DepEntry>,
) -> Result<(), ModuleError> {
    if done.contains(entry.path.as_str()) {
        return Ok(());
    }
    if stack.contains(&entry.path.as_str()) {
        return Err(ModuleError::Cycle(entry.name.to_string()));
    }
    stack.push(&entry.path);
    for d in entry.deps.iter().rev() {
        let child = dep
            .by_path(d)
            .ok_or_else(|| ModuleError::UnknownDependency {
                module: entry.name.to_string(),
                dep: d.clone(),
            })?;
        visit(dep, child, done, stack, order)?;
    }
    stack.pop();
    done.insert(&entry.path);
    order.push(entry);
    Ok(())
}

pub(super) fn modules_dir(kver: &str) -> Result<String, ModuleError> {
    if kver.is_empty() || kver.contains('/') || kver.starts_with('.') {
        return Err(ModuleError::BadMetadata {
            path: "/lib/modules".into(),
            why: format!("{kver:?} is not a kernel version"),
        });
    }
    Ok(format!("lib/modules/{kver}"))
}

pub(super) fn module_path(dir: &str, rel: &str) -> Result<RootPath, ModuleError> {
    RootPath::new(&format!("{dir}/{rel}")).map_err(|e| ModuleError::BadMetadata {
        path: format!("/{dir}/{rel}"),
        why: e.to_string(),
    })
}

pub(super) fn read_text(
    tree: &RootfsTree,
    dir: &str,
    file: &str,
    kver: &str,
) -> Result<String, ModuleError> {
    let at = module_path(dir, file)?;
    let data = tree.file_data(&at).ok_or_else(|| ModuleError::NoMetadata {
        path: at.to_absolute(),
        kver: kver.to_string(),
    })?;
    String::from_utf8(data.to_vec()).map_err(|_| ModuleError::BadMetadata {
        path: at.to_absolute(),
        why: "not UTF-8 text".into(),
    })
}

const COMPRESSED: [&str; 3] = [".ko.gz", ".ko.xz", ".ko.zst"];

pub(super) fn decompressed_name(path: &str) -> String {
    COMPRESSED
        .iter()
        .find_map(|ext| path.strip_suffix(ext).map(|stem| format!("{stem}.ko")))
        .unwrap_or_else(|| path.to_string())
}

fn decompress(path: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let r = if path.ends_with(".gz") {
        flate2::read::GzDecoder::new(data).read_to_end(&mut out)
    } else if path.ends_with(".xz") {
        liblzma::read::XzDecoder::new(data).read_to_end(&mut out)
    } else if path.ends_with(".zst") {
        zstd::stream::read::Decoder::new(data).and_then(|mut d| d.read_to_end(&mut out))
    } else {
        return Ok(data.to_vec());
    };
    r.map_err(|e| e.to_string())?;
    Ok(out)
}

/// Up to five known names that look like `name`, best first.
fn close_names<'a>(name: &ModuleName, known: impl Iterator<Item = &'a ModuleName>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = known
        .map(|k| {
            let mut s = strsim::jaro_winkler(name.as_str(), k.as_str());
            if k.as_str().contains(name.as_str()) || name.as_str().contains(k.as_str()) {
                s += 0.2;
            }
            (s, k.as_str())
        })
        .filter(|(s, _)| *s >= 0.85)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let mut seen = BTreeSet::new();
    scored
        .into_iter()
        .filter(|(_, n)| seen.insert(*n))
        .take(5)
        .map(|(_, n)| n.to_string())
        .collect()
}
