//! Stage 2: the plan. Recipe + board profile + command-line overrides -> one concrete
//! description of the image. Every later stage reads only the plan, never the recipe.

pub mod lockfile;
mod runtime;
mod variant;

pub use runtime::{ModelUpdatesPlan, RuntimePlan, Secret, TlsPlan};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use edge_config::Arch;

use crate::model::fetch::ModelDownload;
use crate::packages::LeaveOut;
use crate::recipe::{
    parse_mode, parse_size, recipe_dir, Board, LoadedRecipe, ModelSection, OutputKind, RecipeError,
    TestCase, DEFAULT_MIRROR,
};
use crate::rootfs::RootPath;

/// The file-system skeleton every image gets.
pub const BASE_PACKAGE: &str = "alpine-baselayout";
/// The shell an image with `runtime.debug_shell = true` starts on its console, and its C
/// library. edge-init and edge-runtime are static, so an image without that shell has no use
/// for either: the skeleton is installed without its `/bin/sh` dependency.
pub const SHELL_PACKAGES: &[&str] = &["busybox", "musl"];

/// What the command line (or environment) may change without editing the recipe.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Output folder (default `images/<name>/`).
    pub out_dir: Option<PathBuf>,
    /// Alpine mirror replacing the recipe's (URL or local folder).
    pub mirror: Option<String>,
    /// Extra trusted keys (for that mirror).
    pub trusted_keys: Vec<PathBuf>,
    /// Build date for timestamps (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<u64>,
    /// The recipe's lock file: packages pinned, source date from it.
    pub lock: Option<LockedBuild>,
}

/// A lock file and where it was read from (for messages).
#[derive(Debug, Clone)]
pub struct LockedBuild {
    pub path: PathBuf,
    pub lock: lockfile::Lockfile,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub hostname: String,
    pub board: Board,
    pub arch: Arch,
    pub recipe_path: PathBuf,
    /// Dotted keys replaced in the recipe read from `recipe_path` ([`Plan::variant`]); empty
    /// for a recipe as written.
    pub keys_set: std::collections::BTreeMap<String, toml::Value>,
    pub out_dir: PathBuf,
    /// Every timestamp in the image; fixed so that builds are reproducible.
    pub source_date_epoch: u64,
    pub alpine: AlpinePlan,
    pub kernel: KernelPlan,
    /// Every model the image serves, in the recipe's order.
    pub models: Vec<ModelPlan>,
    pub runtime: RuntimePlan,
    pub network: edge_config::NetworkConfig,
    pub files: Vec<FilePlan>,
    pub outputs: BTreeSet<OutputKind>,
    pub disk_size: Option<u64>,
    pub data_size: u64,
    /// `image.version`: what the device reports and its update carries.
    pub version: String,
    /// `image.slot_size`: each root slot of a disk image (default from the root's size).
    pub slot_size: Option<u64>,
    pub system_updates: Option<SystemUpdatesPlan>,
    pub tests: Vec<TestCase>,
    pub lock: Option<LockedBuild>,
}

/// `[system_updates]`: host files and the trial's deadline.
#[derive(Debug, Clone)]
pub struct SystemUpdatesPlan {
    pub public_key: PathBuf,
    /// Signs `<name>.update`; none: no update artifact is written.
    pub signing_key: Option<PathBuf>,
    pub commit_deadline_secs: u64,
}

#[derive(Debug, Clone)]
pub struct AlpinePlan {
    /// https URL or local folder laid out like an Alpine mirror.
    pub mirror: String,
    pub branch: String,
    pub repositories: Vec<String>,
    /// The mirror the image's `/etc/apk/repositories` names for `repositories`.
    pub device_mirror: String,
    /// `[[alpine.repository]]`, searched after the branch repositories.
    pub third_party: Vec<ThirdPartyPlan>,
    /// Everything asked for: base packages, kernel, firmware, the recipe's packages.
    pub world: Vec<String>,
    /// Packages installed without some or all of their dependencies, and why.
    pub leave_out: BTreeMap<String, LeaveOutRule>,
    /// Keys to trust besides Alpine's built-in ones.
    pub extra_keys: Vec<PathBuf>,
}

/// Why a package is installed without some of its dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveOutRule {
    /// A kernel or firmware package, installed for its files alone: its dependencies are
    /// userspace for rebuilding an initramfs on the device, which this image never does.
    BootPackage,
    /// The file-system skeleton of an image without a debug shell: all but its `/bin/sh`.
    NoShell,
}

impl LeaveOutRule {
    /// Which dependencies the resolver does not follow.
    pub fn leave_out(self) -> LeaveOut {
        match self {
            LeaveOutRule::BootPackage => LeaveOut::All,
            LeaveOutRule::NoShell => LeaveOut::Named(vec!["/bin/sh".to_string()]),
        }
    }

    /// The reason the manifest and SBOM give for the dependencies left out.
    pub fn reason(self) -> &'static str {
        match self {
            LeaveOutRule::BootPackage => "a boot package is installed for its kernel, modules and firmware only: its dependencies (mkinitfs and, through it, apk-tools, OpenSSL, cryptsetup, kmod) rebuild initramfs images on a device, which an edgeimg image never does; edge-init loads the modules itself",
            LeaveOutRule::NoShell => "no shell in this image (runtime.debug_shell is off): alpine-baselayout's /bin/sh, busybox with its C library, would only serve someone who got onto the device; edge-init and edge-runtime are static and run nothing else",
        }
    }
}

/// A third-party repository: where the build reads it, and what the device is told.
#[derive(Debug, Clone)]
pub struct ThirdPartyPlan {
    /// https URL or folder, without the arch.
    pub url: String,
    /// Its `/etc/apk/repositories` line; `None` for a folder with no `device_url`.
    pub device_url: Option<String>,
}

impl AlpinePlan {
    /// Every repository the build reads, in search order: the branch ones, then third-party.
    pub fn repo_specs(&self) -> Vec<crate::packages::RepoSpec> {
        let branch = self.repositories.iter().map(|name| {
            crate::packages::RepoSpec::branch(&self.mirror, &self.branch, name, &self.device_mirror)
        });
        let third_party = self.third_party.iter().map(|t| crate::packages::RepoSpec {
            source: t.url.clone(),
            device_line: t.device_url.clone(),
        });
        branch.chain(third_party).collect()
    }
}

#[derive(Debug, Clone)]
pub struct KernelPlan {
    pub package: String,
    /// The whole kernel command line.
    pub cmdline: String,
    /// Modules named by the board, the recipe and the disk layout (the device trees' and
    /// every dependency and softdep are added by the kernel stage).
    pub modules: Vec<ModuleRequest>,
    /// Device trees whose nodes decide drivers (file names under /boot).
    pub device_trees: Vec<String>,
}

/// One module the image must ship, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRequest {
    /// A module name (`-` or `_`).
    pub name: String,
    pub why: String,
    pub used: ModuleUse,
    /// Needed on the way to the root partition: the boot initramfs of a disk image carries it.
    pub in_boot_initramfs: bool,
}

/// When init loads a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleUse {
    /// At every boot, by name: nothing a device asks for (file systems, input handlers).
    AtBoot,
    /// When a device's modalias matches one of its aliases.
    ByDevice,
}

impl ModuleRequest {
    /// A module loaded at every boot by name, as a recipe's `kernel.modules` asks.
    pub fn at_boot(name: &str, why: &str) -> Self {
        ModuleRequest {
            name: name.to_string(),
            why: why.to_string(),
            used: ModuleUse::AtBoot,
            in_boot_initramfs: false,
        }
    }

    /// Model updates live on an ext4 data disk beside the kernel + initramfs boot.
    fn model_updates_disk() -> Self {
        ModuleRequest::at_boot("ext4", "model updates: the data disk's file system")
    }

    fn board(module: &crate::recipe::BoardModule, used: ModuleUse, boot: bool) -> Self {
        ModuleRequest {
            name: module.name.to_string(),
            why: format!("board: {}", module.why),
            used,
            in_boot_initramfs: boot,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ModelPlan {
    /// The file the build reads: the recipe's, or the download's place in the cache.
    pub path: PathBuf,
    /// Set when the recipe gives `url`: fetched into `path` before a build.
    pub download: Option<ModelDownload>,
    pub name: String,
    pub sha256: Option<String>,
    pub inputs: BTreeMap<String, Vec<i64>>,
}

#[derive(Debug, Clone)]
pub struct FilePlan {
    pub dest: RootPath,
    pub source: FileSource,
    pub mode: u32,
}

#[derive(Debug, Clone)]
pub enum FileSource {
    Host(PathBuf),
    Inline(String),
}

/// A plan of `recipe`, written as `r.toml` in `dir` beside the `model.onnx` it may name.
#[cfg(test)]
pub(crate) fn plan_of_recipe(dir: &Path, recipe: &str) -> Plan {
    let path = dir.join("r.toml");
    std::fs::write(&path, recipe).unwrap();
    std::fs::write(dir.join("model.onnx"), b"model").unwrap();
    let loaded = LoadedRecipe::parse(&path, recipe.to_string()).unwrap();
    Plan::new(&loaded, &Overrides::default()).unwrap()
}

impl Plan {
    /// The same image without model updates: no update store, nor the data disk driver only
    /// the store asked for (a recipe's own request for it stays).
    pub fn without_model_updates(mut self) -> Plan {
        self.runtime.model_updates = None;
        let disk_driver = ModuleRequest::model_updates_disk();
        self.kernel.modules.retain(|m| *m != disk_driver);
        self
    }

    /// `path` (one the recipe names) as the recipe wrote it: relative to the recipe's folder
    /// when it lies there. What outputs record, so they carry no path of the build host.
    pub fn recipe_relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(recipe_dir(&self.recipe_path))
            .unwrap_or(path)
            .to_path_buf()
    }

    pub fn new(loaded: &LoadedRecipe, overrides: &Overrides) -> Result<Plan, RecipeError> {
        let r = &loaded.recipe;
        let board = r.image.board;
        let profile = board.profile();
        let name = r.image.name.get_ref().clone();

        let kernel_package = r
            .kernel
            .package
            .clone()
            .unwrap_or_else(|| profile.kernel_package.to_string());
        let boot_packages: Vec<String> = std::iter::once(kernel_package.clone())
            .chain(profile.firmware_packages.iter().map(|s| s.to_string()))
            .collect();
        let mut leave_out: BTreeMap<String, LeaveOutRule> = boot_packages
            .iter()
            .map(|p| (p.clone(), LeaveOutRule::BootPackage))
            .collect();
        let mut world = vec![BASE_PACKAGE.to_string()];
        if r.runtime.debug_shell {
            world.extend(SHELL_PACKAGES.iter().map(|s| s.to_string()));
        } else {
            leave_out.insert(BASE_PACKAGE.to_string(), LeaveOutRule::NoShell);
        }
        world.extend(boot_packages);
        world.extend(r.alpine.packages.iter().map(|p| p.get_ref().clone()));
        dedup_keep_order(&mut world);
        if let Some(locked) = &overrides.lock {
            // Exact versions for everything locked; other world entries (constraints,
            // `!conflicts`) still apply.
            let pins = locked.lock.pins();
            world.retain(|w| !locked.lock.packages.iter().any(|p| &p.name == w));
            world.extend(pins);
        }

        let mut extra_keys: Vec<PathBuf> = r
            .alpine
            .keys
            .iter()
            .map(|k| loaded.resolve(k.get_ref()))
            .collect();
        extra_keys.extend(overrides.trusted_keys.iter().cloned());
        for (key, spanned) in extra_keys.iter().zip(r.alpine.keys.iter()) {
            if !key.is_file() {
                return Err(loaded.error_at(
                    spanned.span(),
                    "alpine.keys",
                    format!("key file {} does not exist", key.display()),
                ));
            }
        }

        let mut third_party = Vec::new();
        for repo in &r.alpine.third_party {
            for spanned in repo.all_keys() {
                let key = loaded.resolve(spanned.get_ref());
                if !key.is_file() {
                    return Err(loaded.error_at(
                        spanned.span(),
                        "alpine.repository.key",
                        format!("key file {} does not exist", key.display()),
                    ));
                }
                extra_keys.push(key);
            }
            let url = resolve_mirror(loaded, repo.url.get_ref());
            let device_url = match &repo.device_url {
                Some(d) => Some(d.get_ref().clone()),
                None if url.starts_with("https://") => Some(url.clone()),
                None => None,
            };
            third_party.push(ThirdPartyPlan { url, device_url });
        }
        let device_mirror = match &r.alpine.device_mirror {
            Some(m) => m.get_ref().clone(),
            None => match &r.alpine.mirror {
                Some(m) if m.get_ref().starts_with("https://") => m.get_ref().clone(),
                _ => DEFAULT_MIRROR.to_string(),
            },
        };

        let mirror = match (&overrides.mirror, &r.alpine.mirror) {
            (Some(m), _) => m.clone(),
            (None, Some(m)) => resolve_mirror(loaded, m.get_ref()),
            (None, None) => DEFAULT_MIRROR.to_string(),
        };

        let mut cmdline = profile.console.to_string();
        if let Some(extra) = &r.kernel.cmdline {
            cmdline.push(' ');
            cmdline.push_str(extra);
        }
        let mut modules: Vec<ModuleRequest> = Vec::new();
        for m in profile.device_modules {
            modules.push(ModuleRequest::board(m, ModuleUse::ByDevice, false));
        }
        for name in &r.kernel.modules {
            modules.push(ModuleRequest::at_boot(name, "recipe: kernel.modules"));
        }

        let models = r
            .models
            .iter()
            .map(|m| model_plan(loaded, m))
            .collect::<Result<Vec<_>, _>>()?;

        let mut files = Vec::new();
        for f in &r.files {
            let dest = RootPath::new(f.dest.get_ref())
                .map_err(|e| loaded.error_at(f.dest.span(), "files.dest", e.to_string()))?;
            let source = match (&f.src, &f.content) {
                (Some(src), _) => {
                    let path = loaded.resolve(src);
                    if !path.is_file() {
                        return Err(loaded.error_at(
                            f.dest.span(),
                            "files.src",
                            format!("source file {} does not exist", path.display()),
                        ));
                    }
                    FileSource::Host(path)
                }
                (None, Some(text)) => FileSource::Inline(text.clone()),
                (None, None) => unreachable!("validated: one of src/content"),
            };
            let mode = f
                .mode
                .as_ref()
                .map(|m| parse_mode(m.get_ref()).expect("validated"))
                .unwrap_or(0o644);
            files.push(FilePlan { dest, source, mode });
        }

        let outputs: BTreeSet<OutputKind> = match &r.image.outputs {
            Some(list) => list.iter().copied().collect(),
            None if profile.disk_boot => [OutputKind::RootfsTar, OutputKind::Disk].into(),
            None => [OutputKind::RootfsTar, OutputKind::Initramfs].into(),
        };
        if outputs.contains(&OutputKind::Disk) || outputs.contains(&OutputKind::Qcow2) {
            // The disk's squashfs root and ext4 data partition need their drivers.
            for m in profile.root_device_modules {
                modules.push(ModuleRequest::board(m, ModuleUse::ByDevice, true));
            }
            let file_system = |name: &str, why: &str, boot: bool| ModuleRequest {
                name: name.into(),
                why: why.into(),
                used: ModuleUse::AtBoot,
                in_boot_initramfs: boot,
            };
            modules.push(file_system(
                "squashfs",
                "disk: the root partition's file system",
                true,
            ));
            modules.push(file_system(
                "ext4",
                "disk: the data partition's file system",
                false,
            ));
        } else if r
            .runtime
            .model_updates
            .as_ref()
            .is_some_and(|on| *on.get_ref())
        {
            modules.push(ModuleRequest::model_updates_disk());
        }

        let size = |s: &Option<toml::Spanned<String>>| {
            s.as_ref()
                .map(|s| parse_size(s.get_ref()).expect("validated"))
        };

        Ok(Plan {
            keys_set: Default::default(),
            hostname: r.image.hostname.clone().unwrap_or_else(|| name.clone()),
            out_dir: overrides
                .out_dir
                .clone()
                .unwrap_or_else(|| default_out_dir(&loaded.path, &name)),
            name,
            board,
            arch: profile.arch,
            recipe_path: loaded.path.clone(),
            source_date_epoch: overrides
                .source_date_epoch
                .or(overrides.lock.as_ref().map(|l| l.lock.source_date_epoch))
                .unwrap_or(0),
            alpine: AlpinePlan {
                mirror,
                branch: r.alpine.branch.clone(),
                repositories: r.alpine.repositories.clone(),
                device_mirror,
                third_party,
                world,
                leave_out,
                extra_keys,
            },
            kernel: KernelPlan {
                package: kernel_package,
                cmdline,
                modules,
                device_trees: profile.device_trees.iter().map(|s| s.to_string()).collect(),
            },
            models,
            runtime: RuntimePlan::new(loaded, &r.runtime),
            network: edge_config::NetworkConfig {
                dhcp: r.network.dhcp,
                interface: r.network.interface.clone(),
            },
            files,
            outputs,
            disk_size: size(&r.image.size),
            data_size: size(&r.image.data_size).unwrap_or(32 << 20),
            version: r
                .image
                .version
                .as_ref()
                .map_or_else(|| "1".to_string(), |v| v.get_ref().clone()),
            slot_size: size(&r.image.slot_size),
            system_updates: r.system_updates.as_ref().map(|u| SystemUpdatesPlan {
                public_key: loaded.resolve(u.public_key.get_ref()),
                signing_key: u.signing_key.as_ref().map(|k| loaded.resolve(k.get_ref())),
                commit_deadline_secs: u
                    .commit_deadline_secs
                    .as_ref()
                    .map_or(edge_config::system::DEFAULT_COMMIT_DEADLINE_SECS, |d| {
                        *d.get_ref()
                    }),
            }),
            tests: r.tests.clone(),
            lock: overrides.lock.clone(),
        })
    }
}

/// One `[[model]]`: a file beside the recipe, or a pinned download cached under the user's cache.
fn model_plan(loaded: &LoadedRecipe, m: &ModelSection) -> Result<ModelPlan, RecipeError> {
    let name = crate::recipe::model_name(m);
    let inputs = m.inputs.clone();
    let pin = m.sha256.as_ref().map(|s| s.get_ref().to_ascii_lowercase());
    if let Some(url) = &m.url {
        let download = ModelDownload {
            url: resolve_mirror(loaded, url.get_ref()),
            sha256: pin.expect("validated: a url has a sha256"),
            member: m.member.as_ref().map(|s| s.get_ref().clone()),
        };
        let cache = crate::packages::default_cache_dir()
            .map_err(|e| loaded.error_at(url.span(), "model.url", format!("{e:#}")))?;
        return Ok(ModelPlan {
            path: download.model_path(&cache),
            download: Some(download),
            name,
            // The pin is the download's; the model file is checked through it.
            sha256: None,
            inputs,
        });
    }
    let spanned = m.path.as_ref().expect("validated: path or url");
    let path = loaded.resolve(spanned.get_ref());
    if !path.is_file() {
        return Err(loaded.error_at(
            spanned.span(),
            "model.path",
            format!(
                "model file {} does not exist (paths are relative to the recipe's folder)",
                path.display()
            ),
        ));
    }
    Ok(ModelPlan {
        path,
        download: None,
        name,
        sha256: pin,
        inputs,
    })
}

/// A mirror (or any location) that is not a URL is a folder, relative to the recipe like every other path.
fn resolve_mirror(loaded: &LoadedRecipe, mirror: &str) -> String {
    if mirror.contains("://") {
        mirror.to_string()
    } else {
        loaded.resolve(Path::new(mirror)).display().to_string()
    }
}

/// `images/<name>/` next to the recipes folder when the recipe lives in `recipes/`, else
/// `images/<name>/` in the current directory.
fn default_out_dir(recipe: &Path, name: &str) -> PathBuf {
    let project = recipe
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "recipes"))
        .and_then(Path::parent);
    match project {
        Some(p) if !p.as_os_str().is_empty() => p.join("images").join(name),
        _ => PathBuf::from("images").join(name),
    }
}

fn dedup_keep_order(items: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}
