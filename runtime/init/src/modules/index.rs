//! The image's module index: `modules.dep`, `modules.alias`, `modules.softdep` and
//! `modules.builtin` under `/lib/modules/<release>/`, the text files depmod writes (the builder
//! keeps them, cut down to the modules it ships).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Where the kernel's modules live.
pub const MODULES_ROOT: &str = "/lib/modules";

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source} (the image has no module index for this kernel)")]
pub struct IndexError {
    path: String,
    source: std::io::Error,
}

/// One module as `modules.dep` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Relative to the index's folder, e.g. `kernel/drivers/net/virtio_net.ko`.
    path: String,
    /// Names of everything it needs, as depmod listed them (the whole closure).
    deps: Vec<String>,
}

/// One `modules.alias` line. A kernel has thousands; a lookup rules most out by their literal
/// parts alone, and a pattern is compiled only once a lookup gets that far.
#[derive(Debug)]
struct Alias {
    /// Normalised (see [`normalize`]).
    pattern: String,
    /// Up to the first wildcard: a modalias must start with it.
    literal_prefix: String,
    /// The longest run without wildcards: a modalias must contain it (for
    /// `of:N*T*Cbrcm,bcm2711-emmc2C*`, the compatible).
    longest_literal: String,
    /// `None` for a pattern glob cannot read: it matches nothing, as kmod skips it.
    compiled: std::cell::OnceCell<Option<glob::Pattern>>,
    module: String,
}

impl Alias {
    fn new(pattern: &str, module: &str) -> Alias {
        let pattern = normalize(pattern);
        let prefix_end = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
        let longest_literal = literal_runs(&pattern)
            .max_by_key(|run| run.len())
            .unwrap_or_default()
            .to_string();
        Alias {
            literal_prefix: pattern[..prefix_end].to_string(),
            longest_literal,
            pattern,
            compiled: std::cell::OnceCell::new(),
            module: module_name(module),
        }
    }

    fn matches(&self, modalias: &str, options: glob::MatchOptions) -> bool {
        modalias.starts_with(&self.literal_prefix)
            && modalias.contains(&self.longest_literal)
            && self
                .compiled
                .get_or_init(|| glob::Pattern::new(&self.pattern).ok())
                .as_ref()
                .is_some_and(|p| p.matches_with(modalias, options))
    }
}

/// The parts of a glob pattern outside wildcards and bracket expressions.
fn literal_runs(pattern: &str) -> impl Iterator<Item = &str> {
    let mut in_brackets = false;
    pattern
        .split(move |c: char| {
            let split = in_brackets || matches!(c, '*' | '?' | '[');
            match c {
                '[' => in_brackets = true,
                ']' if in_brackets => in_brackets = false,
                _ => {}
            }
            split
        })
        .filter(|run| !run.is_empty())
}

/// Modules to load before (`pre:`) and after (`post:`) a module; names or aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftDeps {
    pub pre: Vec<String>,
    pub post: Vec<String>,
}

#[derive(Debug, Default)]
pub struct ModuleIndex {
    dir: PathBuf,
    modules: HashMap<String, Entry>,
    /// In file order; the pattern is normalised like the lookups (see [`normalize`]).
    aliases: Vec<Alias>,
    softdeps: HashMap<String, SoftDeps>,
    builtin: HashSet<String>,
}

/// What a name passed to modprobe stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Modules in the index, by name.
    Modules(Vec<String>),
    /// Compiled into the kernel: nothing to load.
    Builtin,
    /// Neither a module, an alias of one nor built in.
    Unknown,
}

impl ModuleIndex {
    /// The index of the running kernel (`uname -r`).
    pub fn for_running_kernel() -> Result<ModuleIndex, IndexError> {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        ModuleIndex::load(&Path::new(MODULES_ROOT).join(release))
    }

    /// Reads the index in `dir`; only `modules.dep` must exist.
    pub fn load(dir: &Path) -> Result<ModuleIndex, IndexError> {
        let read = |name: &str| std::fs::read_to_string(dir.join(name));
        let dep = read("modules.dep").map_err(|source| IndexError {
            path: dir.join("modules.dep").display().to_string(),
            source,
        })?;
        let mut index = ModuleIndex::parse(
            &dep,
            &read("modules.alias").unwrap_or_default(),
            &read("modules.softdep").unwrap_or_default(),
            &read("modules.builtin").unwrap_or_default(),
        );
        index.dir = dir.to_path_buf();
        Ok(index)
    }

    pub fn parse(dep: &str, alias: &str, softdep: &str, builtin: &str) -> ModuleIndex {
        let mut index = ModuleIndex::default();
        for line in content_lines(dep) {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let entry = Entry {
                path: path.trim().to_string(),
                deps: deps.split_whitespace().map(name_of_path).collect(),
            };
            index.modules.insert(name_of_path(path), entry);
        }
        for line in content_lines(alias) {
            let mut words = line.split_whitespace();
            if let (Some("alias"), Some(pattern), Some(module)) =
                (words.next(), words.next(), words.next())
            {
                index.aliases.push(Alias::new(pattern, module));
            }
        }
        for line in content_lines(softdep) {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(module) = words.next() else { continue };
            let deps = index.softdeps.entry(module_name(module)).or_default();
            let mut post = false;
            for word in words {
                match word {
                    "pre:" => post = false,
                    "post:" => post = true,
                    name if post => deps.post.push(name.to_string()),
                    name => deps.pre.push(name.to_string()),
                }
            }
        }
        index.builtin = content_lines(builtin).map(name_of_path).collect();
        index
    }

    /// Every module with an alias that matches `modalias`, each once, in file order.
    pub fn matching(&self, modalias: &str) -> Vec<&str> {
        let wanted = normalize(modalias);
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        let mut found: Vec<&str> = Vec::new();
        for alias in &self.aliases {
            if alias.matches(&wanted, options) && !found.contains(&alias.module.as_str()) {
                found.push(&alias.module);
            }
        }
        found
    }

    /// A module name or alias, as modprobe resolves it.
    pub fn resolve(&self, name: &str) -> Resolved {
        let module = module_name(name);
        if self.modules.contains_key(&module) {
            return Resolved::Modules(vec![module]);
        }
        if self.builtin.contains(&module) {
            return Resolved::Builtin;
        }
        let matching = self.matching(name);
        if matching.is_empty() {
            Resolved::Unknown
        } else {
            Resolved::Modules(matching.into_iter().map(str::to_string).collect())
        }
    }

    /// The module's file, if the index has it.
    pub fn path(&self, module: &str) -> Option<PathBuf> {
        self.modules.get(module).map(|e| self.dir.join(&e.path))
    }

    /// What the module needs, deepest last (load them in reverse).
    pub fn deps(&self, module: &str) -> &[String] {
        self.modules.get(module).map_or(&[], |e| &e.deps)
    }

    pub fn softdeps(&self, module: &str) -> Option<&SoftDeps> {
        self.softdeps.get(module)
    }

    pub fn is_builtin(&self, module: &str) -> bool {
        self.builtin.contains(module)
    }
}

fn content_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// The kernel's name for a module: `-` and `_` are the same to it.
pub fn module_name(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// `virtio_net` for `kernel/drivers/net/virtio_net.ko[.gz]`.
pub fn name_of_path(path: &str) -> String {
    let file = path.trim().rsplit('/').next().unwrap_or(path);
    module_name(file.split(".ko").next().unwrap_or(file))
}

/// kmod's alias normalisation, applied to patterns and lookups alike: `-` becomes `_`, except
/// inside `[...]` where it may be a range.
fn normalize(alias: &str) -> String {
    let mut out = String::with_capacity(alias.len());
    let mut in_brackets = false;
    for c in alias.chars() {
        match c {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            _ => {}
        }
        out.push(if c == '-' && !in_brackets { '_' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n\
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n\
kernel/net/core/failover.ko:\n\
kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko\n\
kernel/drivers/mmc/host/sdhci-iproc.ko: kernel/drivers/mmc/host/sdhci-pltfm.ko\n\
kernel/crypto/crc32c_generic.ko:\n";
    const ALIAS: &str = "# Aliases extracted from modules themselves.\n\
alias virtio:d00000001v* virtio_net\n\
alias of:N*T*Cbrcm,bcm2711-emmc2C* sdhci_iproc\n\
alias of:N*T*Cbrcm,bcm2711-emmc2 sdhci_iproc\n\
alias usb:v0BDAp8153d[0-2]*dc*dsc*dp*ic*isc*ip*in* r8152\n\
alias crypto-crc32c crc32c_generic\n\
alias crc32c crc32c_generic\n";
    const SOFTDEP: &str = "softdep ext4 pre: crypto-crc32c\nsoftdep virtio_net pre: a post: b c\n";

    fn index() -> ModuleIndex {
        ModuleIndex::parse(DEP, ALIAS, SOFTDEP, "kernel/drivers/virtio/virtio_pci.ko\n")
    }

    #[test]
    fn device_modaliases_match_their_drivers() {
        let index = index();
        assert_eq!(index.matching("virtio:d00000001v00001AF4"), ["virtio_net"]);
        // A device tree node lists every compatible; the last one needs no trailing `C`.
        assert_eq!(
            index.matching("of:NmmcT(null)Cbrcm,bcm2711-emmc2"),
            ["sdhci_iproc"]
        );
        assert_eq!(
            index.matching("of:NmmcT(null)Cbrcm,bcm2711-emmc2Cbrcm,sdhci"),
            ["sdhci_iproc"]
        );
        assert!(index
            .matching("of:NmmcT(null)Cbrcm,bcm2711-emmc3")
            .is_empty());
        assert!(index.matching("virtio:d00000002v00001AF4").is_empty());
    }

    #[test]
    fn literal_runs_leave_out_wildcards_and_bracket_expressions() {
        let runs: Vec<&str> = literal_runs("usb:v0BDAp8153d[0-2]*dc*in?x").collect();
        assert_eq!(runs, ["usb:v0BDAp8153d", "dc", "in", "x"]);
        let alias = Alias::new("of:N*T*Cbrcm,bcm2711-emmc2C*", "sdhci-iproc");
        assert_eq!(alias.literal_prefix, "of:N");
        assert_eq!(alias.longest_literal, "Cbrcm,bcm2711_emmc2C");
    }

    #[test]
    fn bracket_ranges_match_like_fnmatch() {
        let index = index();
        let with = |d: &str| format!("usb:v0BDAp8153d{d}dc00dsc00dp00ic02isc06ip00in00");
        assert_eq!(index.matching(&with("0100")), ["r8152"]);
        assert!(index.matching(&with("3000")).is_empty());
    }

    #[test]
    fn names_resolve_to_modules_aliases_or_builtins() {
        let index = index();
        assert_eq!(
            index.resolve("virtio-net"),
            Resolved::Modules(vec!["virtio_net".into()])
        );
        assert_eq!(
            index.resolve("crypto-crc32c"),
            Resolved::Modules(vec!["crc32c_generic".into()])
        );
        assert_eq!(index.resolve("virtio_pci"), Resolved::Builtin);
        assert_eq!(index.resolve("nonexistent"), Resolved::Unknown);
    }

    #[test]
    fn dependencies_and_softdeps_are_read() {
        let index = index();
        assert_eq!(index.deps("virtio_net"), ["net_failover", "failover"]);
        assert_eq!(index.deps("sdhci_iproc"), ["sdhci_pltfm"]);
        assert_eq!(
            index.softdeps("ext4"),
            Some(&SoftDeps {
                pre: vec!["crypto-crc32c".into()],
                post: vec![]
            })
        );
        let virtio = index.softdeps("virtio_net").unwrap();
        assert_eq!((virtio.pre.len(), virtio.post.len()), (1, 2));
        assert_eq!(
            index.path("ext4"),
            Some(PathBuf::from("kernel/fs/ext4/ext4.ko"))
        );
    }
}
