//! A module index cut down to the modules an image (or its boot initramfs) carries.

use std::collections::{BTreeMap, HashSet};

use super::modules::{decompressed_name, module_path, modules_dir, read_text};
use super::{Module, ModuleError, ModuleName};
use crate::rootfs::{Meta, RootfsTree};

/// Which lines of a `modules.*` file stay.
type LineFilter<'a> = Box<dyn Fn(&str) -> bool + 'a>;

/// The `modules.*` files of `/lib/modules/<kver>/` in `tree`, cut down to `kept` and naming
/// them by their decompressed `.ko` files, ready to be written beside them: modules.dep,
/// modules.order, modules.alias, modules.symbols, modules.softdep, modules.devname and
/// modules.weakdep are filtered; modules.builtin is kept whole (edge-init reads it, to know a
/// module it is asked for is built in). The depmod `.bin` indexes would name absent modules and
/// are left out (the text files say the same), and so is modules.builtin.modinfo: only kmod
/// reads those, and no image carries kmod (the builder reads the package's own modinfo).
pub fn index_files<'m>(
    tree: &RootfsTree,
    kver: &str,
    kept: impl Iterator<Item = &'m Module>,
) -> Result<BTreeMap<String, (Vec<u8>, Meta)>, ModuleError> {
    let dir = modules_dir(kver)?;
    let kept: Vec<&Module> = kept.collect();
    let kept_names: HashSet<&str> = kept.iter().map(|m| m.name.as_str()).collect();
    let kept_paths: HashSet<String> = kept
        .iter()
        .map(|m| decompressed_name(&m.source_path))
        .collect();
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
    let mut files = BTreeMap::new();
    for (file, keep) in &filtered {
        let Ok(text) = read_text(tree, &dir, file, kver) else {
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
        files.insert(file.to_string(), (out.into_bytes(), meta));
    }
    let builtin = "modules.builtin";
    let at = module_path(&dir, builtin)?;
    if let (Some(node), Some(data)) = (tree.get(&at), tree.file_data(&at)) {
        files.insert(builtin.to_string(), (data.to_vec(), node.meta.clone()));
    }
    Ok(files)
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
