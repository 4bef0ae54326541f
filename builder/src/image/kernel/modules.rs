//! Choosing kernel modules: the `modules.dep` closure of what the image asks for, in load
//! order, and a `/lib/modules/<kver>/` pruned to exactly those, decompressed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;

use super::moddep::{parse_builtin, DepEntry, ModDep, ModuleName};
use crate::rootfs::{FileData, Meta, RootPath, RootfsTree};

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("kernel {kver} has no module {name:?} (neither in modules.dep nor built in){}", hint(.close))]
    Missing {
        name: String,
        kver: String,
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

/// Which lines of a `modules.*` file stay.
type LineFilter<'a> = Box<dyn Fn(&str) -> bool + 'a>;

/// One module to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub name: ModuleName,
    /// Where it is in the image after [`ModuleSet::prune_tree`]: always an uncompressed `.ko`.
    pub path: RootPath,
}

/// The modules an image loads, dependencies first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSet {
    pub kernel_version: String,
    /// Load order: every module comes after everything it depends on.
    pub modules: Vec<Module>,
    /// Requested names the kernel has built in (nothing to load).
    pub builtin: Vec<ModuleName>,
    /// Paths as modules.dep had them (relative, possibly `.ko.gz`), same order as `modules`.
    source_paths: Vec<String>,
}

impl ModuleSet {
    /// Resolve `wanted` (names with `-` or `_`) against `/lib/modules/<kver>/modules.dep` and
    /// `modules.builtin` in `tree`.
    pub fn resolve(
        tree: &RootfsTree,
        kver: &str,
        wanted: &[&str],
    ) -> Result<ModuleSet, ModuleError> {
        let dir = modules_dir(kver)?;
        let dep = ModDep::parse(&read_text(tree, &dir, "modules.dep", kver)?).map_err(|why| {
            ModuleError::BadMetadata {
                path: format!("{dir}/modules.dep"),
                why,
            }
        })?;
        let builtin = match read_text(tree, &dir, "modules.builtin", kver) {
            Ok(text) => parse_builtin(&text),
            Err(ModuleError::NoMetadata { .. }) => BTreeMap::new(),
            Err(e) => return Err(e),
        };

        let mut order: Vec<&DepEntry> = Vec::new();
        let mut done = HashSet::new();
        let mut builtin_hits = Vec::new();
        for raw in wanted {
            let name = ModuleName::new(raw);
            match dep.by_name(&name) {
                Some(entry) => visit(&dep, entry, &mut done, &mut Vec::new(), &mut order)?,
                None if builtin.contains_key(&name) => {
                    if !builtin_hits.contains(&name) {
                        builtin_hits.push(name);
                    }
                }
                None => {
                    return Err(ModuleError::Missing {
                        close: close_names(&name, dep.names().chain(builtin.keys())),
                        name: raw.to_string(),
                        kver: kver.to_string(),
                    })
                }
            }
        }
        let modules = order
            .iter()
            .map(|e| {
                Ok(Module {
                    name: e.name.clone(),
                    path: module_path(&dir, &decompressed_name(&e.path))?,
                })
            })
            .collect::<Result<_, ModuleError>>()?;
        Ok(ModuleSet {
            kernel_version: kver.to_string(),
            modules,
            builtin: builtin_hits,
            source_paths: order.iter().map(|e| e.path.clone()).collect(),
        })
    }

    /// Leave in `/lib/modules/<kver>/` only this set's modules (decompressed, since linux-virt
    /// cannot load compressed ones) and the `modules.*` files, filtered to match: modules.dep,
    /// modules.order, modules.alias, modules.symbols, modules.softdep, modules.devname and
    /// modules.weakdep are rewritten; modules.builtin* are kept; the other depmod `.bin`
    /// indexes would name removed modules and are dropped (the text files remain).
    pub fn prune_tree(&self, tree: &mut RootfsTree) -> Result<(), ModuleError> {
        let dir = modules_dir(&self.kernel_version)?;
        let kept_names: HashSet<&str> = self.modules.iter().map(|m| m.name.as_str()).collect();
        let kept_paths: HashSet<String> = self
            .source_paths
            .iter()
            .map(|p| decompressed_name(p))
            .collect();

        // Read everything we keep before clearing the directory.
        let mut new_files: BTreeMap<String, (Vec<u8>, Meta)> = BTreeMap::new();
        for src in &self.source_paths {
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
        let filtered: [(&str, LineFilter); 7] = [
            (
                "modules.dep",
                Box::new(|l| path_kept(l.split(':').next(), &kept_paths)),
            ),
            (
                "modules.order",
                Box::new(|l| path_kept(Some(l), &kept_paths)),
            ),
            (
                "modules.alias",
                Box::new(|l| last_word_kept(l, &kept_names)),
            ),
            (
                "modules.symbols",
                Box::new(|l| last_word_kept(l, &kept_names)),
            ),
            (
                "modules.softdep",
                Box::new(|l| word_kept(l, 1, &kept_names)),
            ),
            (
                "modules.weakdep",
                Box::new(|l| word_kept(l, 1, &kept_names)),
            ),
            (
                "modules.devname",
                Box::new(|l| word_kept(l, 0, &kept_names)),
            ),
        ];
        for (file, keep) in &filtered {
            let Ok(text) = read_text(tree, &dir, file, &self.kernel_version) else {
                continue;
            };
            let meta = tree
                .get(&module_path(&dir, file)?)
                .map(|n| n.meta.clone())
                .unwrap_or_else(|| Meta::root(0o644, tree.default_mtime()));
            let mut out = String::new();
            for line in text
                .lines()
                .filter(|l| l.starts_with('#') || l.trim().is_empty() || keep(l))
            {
                out.push_str(&rewrite_extensions(line));
                out.push('\n');
            }
            new_files.insert(file.to_string(), (out.into_bytes(), meta));
        }
        for file in [
            "modules.builtin",
            "modules.builtin.modinfo",
            "modules.builtin.bin",
            "modules.builtin.alias.bin",
        ] {
            let at = module_path(&dir, file)?;
            if let (Some(node), Some(data)) = (tree.get(&at), tree.file_data(&at)) {
                new_files.insert(file.to_string(), (data.to_vec(), node.meta.clone()));
            }
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
        wanted: &[&str],
    ) -> Result<ModuleSet, ModuleError> {
        let set = ModuleSet::resolve(tree, kver, wanted)?;
        set.prune_tree(tree)?;
        Ok(set)
    }

    pub fn names(&self) -> impl Iterator<Item = &ModuleName> {
        self.modules.iter().map(|m| &m.name)
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

fn modules_dir(kver: &str) -> Result<String, ModuleError> {
    if kver.is_empty() || kver.contains('/') || kver.starts_with('.') {
        return Err(ModuleError::BadMetadata {
            path: "/lib/modules".into(),
            why: format!("{kver:?} is not a kernel version"),
        });
    }
    Ok(format!("lib/modules/{kver}"))
}

fn module_path(dir: &str, rel: &str) -> Result<RootPath, ModuleError> {
    RootPath::new(&format!("{dir}/{rel}")).map_err(|e| ModuleError::BadMetadata {
        path: format!("/{dir}/{rel}"),
        why: e.to_string(),
    })
}

fn read_text(tree: &RootfsTree, dir: &str, file: &str, kver: &str) -> Result<String, ModuleError> {
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

fn decompressed_name(path: &str) -> String {
    COMPRESSED
        .iter()
        .find_map(|ext| path.strip_suffix(ext).map(|stem| format!("{stem}.ko")))
        .unwrap_or_else(|| path.to_string())
}

fn rewrite_extensions(line: &str) -> String {
    line.split(' ')
        .map(|w| match w.strip_suffix(':') {
            Some(p) => format!("{}:", decompressed_name(p)),
            None => decompressed_name(w),
        })
        .collect::<Vec<_>>()
        .join(" ")
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

fn path_kept(path: Option<&str>, kept: &HashSet<String>) -> bool {
    path.is_some_and(|p| kept.contains(&decompressed_name(p.trim())))
}

fn last_word_kept(line: &str, kept: &HashSet<&str>) -> bool {
    line.split_whitespace()
        .last()
        .is_some_and(|w| kept.contains(ModuleName::new(w).as_str()))
}

fn word_kept(line: &str, index: usize, kept: &HashSet<&str>) -> bool {
    line.split_whitespace()
        .nth(index)
        .is_some_and(|w| kept.contains(ModuleName::new(w).as_str()))
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
