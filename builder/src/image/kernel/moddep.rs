//! `modules.dep` and module names.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A module's name as the kernel knows it: file name without `.ko[.gz|.xz|.zst]`, with `-`
/// folded to `_` (the kernel treats them as the same).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleName(String);

impl ModuleName {
    pub fn new(name: &str) -> Self {
        ModuleName(name.trim().replace('-', "_"))
    }

    /// The name of the module stored at `path` (`kernel/drivers/net/virtio_net.ko.gz`).
    pub fn from_path(path: &str) -> Self {
        let file = path.rsplit('/').next().unwrap_or(path);
        let stem = file.find(".ko").map_or(file, |i| &file[..i]);
        ModuleName::new(stem)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One parsed `modules.dep`: each module's path (relative to `/lib/modules/<kver>/`) and the
/// paths of everything it needs, as depmod listed them (already the full closure).
#[derive(Debug, Default)]
pub struct ModDep {
    /// In file order, which is depmod's (modules.order) order.
    pub entries: Vec<DepEntry>,
    by_name: HashMap<ModuleName, usize>,
    by_path: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct DepEntry {
    pub name: ModuleName,
    pub path: String,
    pub deps: Vec<String>,
}

impl ModDep {
    pub fn parse(text: &str) -> Result<ModDep, String> {
        let mut dep = ModDep::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (path, deps) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: {line:?} has no `:`", n + 1))?;
            let entry = DepEntry {
                name: ModuleName::from_path(path),
                path: path.trim().to_string(),
                deps: deps.split_whitespace().map(str::to_string).collect(),
            };
            dep.by_name.insert(entry.name.clone(), dep.entries.len());
            dep.by_path.insert(entry.path.clone(), dep.entries.len());
            dep.entries.push(entry);
        }
        Ok(dep)
    }

    pub fn by_name(&self, name: &ModuleName) -> Option<&DepEntry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    pub fn by_path(&self, path: &str) -> Option<&DepEntry> {
        self.by_path.get(path).map(|&i| &self.entries[i])
    }

    pub fn names(&self) -> impl Iterator<Item = &ModuleName> {
        self.entries.iter().map(|e| &e.name)
    }
}

/// Names listed in `modules.builtin` (compiled into the kernel: nothing to load).
pub fn parse_builtin(text: &str) -> BTreeMap<ModuleName, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| (ModuleName::from_path(l), l.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_dashes_and_extensions() {
        assert_eq!(
            ModuleName::from_path("kernel/a/virtio-net.ko.gz"),
            ModuleName::new("virtio_net")
        );
        assert_eq!(ModuleName::from_path("x/sha3-ce.ko").as_str(), "sha3_ce");
    }

    #[test]
    fn parses_dep_lines() {
        let d = ModDep::parse("# c\na/x.ko.gz: b/y.ko.gz c/z.ko.gz\nb/y.ko.gz:\n").unwrap();
        assert_eq!(d.by_name(&ModuleName::new("x")).unwrap().deps.len(), 2);
        assert!(d.by_path("b/y.ko.gz").is_some());
        assert!(ModDep::parse("garbage").is_err());
    }
}
