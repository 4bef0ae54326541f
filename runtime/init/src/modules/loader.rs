//! modprobe's job: load a module by name, alias or device modalias, its `modules.dep`
//! dependencies first and its softdeps around it, each module once.

use std::collections::HashSet;
use std::path::Path;

use nix::errno::Errno;

use super::file::{self, ModuleError};
use super::index::{module_name, name_of_path, ModuleIndex, Resolved};
use crate::console;

/// Where the kernel lists loaded modules (and built-ins that have parameters).
const SYS_MODULE: &str = "/sys/module";

/// The kernel side of loading, apart so the order can be tested without a kernel.
pub trait Kernel: Send {
    fn insert(&mut self, path: &Path) -> Result<(), ModuleError>;
    fn is_loaded(&self, module: &str) -> bool;
}

/// The kernel this process runs on.
pub struct RunningKernel;

impl Kernel for RunningKernel {
    fn insert(&mut self, path: &Path) -> Result<(), ModuleError> {
        file::load(&path.to_string_lossy())
    }

    fn is_loaded(&self, module: &str) -> bool {
        Path::new(SYS_MODULE)
            .join(module)
            .join("initstate")
            .exists()
    }
}

pub struct Loader {
    index: Option<ModuleIndex>,
    kernel: Box<dyn Kernel>,
    /// Loaded by us or found loaded.
    loaded: HashSet<String>,
    /// Tried and refused; not tried again.
    failed: HashSet<String>,
    /// Newly loaded, in load order, for the boot's summary line.
    pub newly_loaded: Vec<String>,
}

impl Loader {
    /// A loader for the running kernel; without an index it can still load explicit files.
    pub fn for_running_kernel() -> Loader {
        match ModuleIndex::for_running_kernel() {
            Ok(index) => Loader::new(Some(index), Box::new(RunningKernel)),
            Err(error) => {
                console::info(format!("{error}: loading listed modules only"));
                Loader::new(None, Box::new(RunningKernel))
            }
        }
    }

    pub fn new(index: Option<ModuleIndex>, kernel: Box<dyn Kernel>) -> Loader {
        Loader {
            index,
            kernel,
            loaded: HashSet::new(),
            failed: HashSet::new(),
            newly_loaded: Vec::new(),
        }
    }

    pub fn has_index(&self) -> bool {
        self.index.is_some()
    }

    /// Loads the drivers for one device; true when a module was newly loaded.
    pub fn load_for_modalias(&mut self, modalias: &str) -> bool {
        let Some(index) = &self.index else {
            return false;
        };
        let matching: Vec<String> = index
            .matching(modalias)
            .into_iter()
            .map(str::to_string)
            .collect();
        let before = self.newly_loaded.len();
        for module in matching {
            self.load_module(&module, &mut Vec::new());
        }
        self.newly_loaded.len() > before
    }

    /// Loads a module listed in the config by its path in the image: through the index when it
    /// knows the module (dependencies, softdeps), else the file alone.
    pub fn load_listed(&mut self, path: &str) {
        let name = name_of_path(path);
        if self.index.as_ref().is_some_and(|i| i.path(&name).is_some()) {
            self.load_module(&name, &mut Vec::new());
        } else if !self.is_loaded(&name) {
            self.insert(&name, Path::new(path));
        }
    }

    /// A name or alias, as a softdep gives it.
    fn load_name(&mut self, name: &str, stack: &mut Vec<String>) {
        let resolved = match &self.index {
            Some(index) => index.resolve(name),
            None => Resolved::Unknown,
        };
        match resolved {
            Resolved::Modules(modules) => {
                for module in modules {
                    self.load_module(&module, stack);
                }
            }
            Resolved::Builtin => {}
            Resolved::Unknown => console::info(format!(
                "module {name}: not in the image's module index (softdep skipped)"
            )),
        }
    }

    fn load_module(&mut self, module: &str, stack: &mut Vec<String>) {
        let module = module_name(module);
        if self.is_loaded(&module) || self.failed.contains(&module) || stack.contains(&module) {
            return;
        }
        let Some(index) = &self.index else { return };
        if index.is_builtin(&module) {
            self.loaded.insert(module);
            return;
        }
        let Some(path) = index.path(&module) else {
            console::error(
                &format!("module:{module}"),
                "not in modules.dep (the image's module index is inconsistent; rebuild the image)",
            );
            self.failed.insert(module);
            return;
        };
        let deps = index.deps(&module).to_vec();
        let softdeps = index.softdeps(&module).cloned().unwrap_or_default();
        stack.push(module.clone());
        for name in &softdeps.pre {
            self.load_name(name, stack);
        }
        // depmod lists the nearest dependency first: load the deepest first, as modprobe does.
        for dep in deps.iter().rev() {
            self.load_module(dep, stack);
        }
        self.insert(&module, &path);
        for name in &softdeps.post {
            self.load_name(name, stack);
        }
        stack.pop();
    }

    fn insert(&mut self, module: &str, path: &Path) {
        match self.kernel.insert(path) {
            Ok(()) => {
                self.loaded.insert(module.to_string());
                self.newly_loaded.push(module.to_string());
            }
            // A driver that found none of its hardware; udev ignores this too.
            Err(ModuleError::Kernel {
                errno: Errno::ENODEV | Errno::ENXIO,
                ..
            }) => {
                console::info(format!("module {module}: no device for it"));
                self.failed.insert(module.to_string());
            }
            Err(error) => {
                console::error(&format!("module:{module}"), error);
                self.failed.insert(module.to_string());
            }
        }
    }

    fn is_loaded(&self, module: &str) -> bool {
        self.loaded.contains(module) || self.kernel.is_loaded(module)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records what would be inserted; `refuse` fails with that errno.
    struct Recorder {
        inserted: Arc<Mutex<Vec<String>>>,
        refuse: Vec<(&'static str, Errno)>,
    }

    impl Kernel for Recorder {
        fn insert(&mut self, path: &Path) -> Result<(), ModuleError> {
            let name = name_of_path(&path.to_string_lossy());
            self.inserted.lock().unwrap().push(name.clone());
            match self.refuse.iter().find(|(n, _)| *n == name) {
                Some((_, errno)) => Err(ModuleError::Kernel {
                    path: path.display().to_string(),
                    errno: *errno,
                }),
                None => Ok(()),
            }
        }

        fn is_loaded(&self, module: &str) -> bool {
            module == "already"
        }
    }

    const DEP: &str = "k/genet.ko: k/mdio-bcm-unimac.ko k/fixed_phy.ko k/libphy.ko\n\
k/mdio-bcm-unimac.ko: k/libphy.ko\nk/fixed_phy.ko: k/libphy.ko\nk/libphy.ko:\n\
k/ext4.ko: k/jbd2.ko\nk/jbd2.ko:\nk/crc32c_generic.ko:\nk/broadcom.ko: k/libphy.ko\n\
k/already.ko:\nk/wants-already.ko: k/already.ko\nk/nodev.ko:\n";
    const ALIAS: &str = "alias of:N*T*Cbrcm,bcm2711-genet-v5 genet\n\
alias of:N*T*Cbrcm,bcm2711-genet-v5C* genet\nalias crypto-crc32c crc32c_generic\n\
alias mdio:0110000000000000101111011010???? broadcom\nalias of:N*T*Cnodev nodev\n";
    const SOFTDEP: &str = "softdep ext4 pre: crypto-crc32c\nsoftdep jbd2 post: missing-thing\n";

    fn loader(refuse: Vec<(&'static str, Errno)>) -> (Loader, Arc<Mutex<Vec<String>>>) {
        let inserted = Arc::new(Mutex::new(Vec::new()));
        let index = ModuleIndex::parse(DEP, ALIAS, SOFTDEP, "k/builtin_one.ko\n");
        let kernel = Recorder {
            inserted: Arc::clone(&inserted),
            refuse,
        };
        (Loader::new(Some(index), Box::new(kernel)), inserted)
    }

    #[test]
    fn a_device_gets_its_driver_after_the_driver_needs() {
        let (mut loader, inserted) = loader(vec![]);
        assert!(loader.load_for_modalias("of:NethernetT(null)Cbrcm,bcm2711-genet-v5"));
        assert_eq!(
            *inserted.lock().unwrap(),
            ["libphy", "fixed_phy", "mdio_bcm_unimac", "genet"]
        );
        // The same device again loads nothing.
        assert!(!loader.load_for_modalias("of:NethernetT(null)Cbrcm,bcm2711-genet-v5"));
        assert!(loader.load_for_modalias("mdio:01100000000000001011110110100010"));
        assert_eq!(inserted.lock().unwrap().last().unwrap(), "broadcom");
        assert!(!loader.load_for_modalias("of:NfooT(null)Cnobody,knows"));
    }

    #[test]
    fn softdeps_load_around_the_module_and_aliases_resolve() {
        let (mut loader, inserted) = loader(vec![]);
        loader.load_listed("/lib/modules/v/k/ext4.ko");
        assert_eq!(
            *inserted.lock().unwrap(),
            ["crc32c_generic", "jbd2", "ext4"]
        );
        assert_eq!(loader.newly_loaded, ["crc32c_generic", "jbd2", "ext4"]);
    }

    #[test]
    fn loaded_and_builtin_modules_are_not_inserted_and_refusals_not_retried() {
        let (mut loader, inserted) = loader(vec![("nodev", Errno::ENODEV)]);
        loader.load_listed("/lib/modules/v/k/wants-already.ko");
        assert_eq!(*inserted.lock().unwrap(), ["wants_already"]);
        assert!(!loader.load_for_modalias("of:NxT(null)Cnodev"));
        assert!(!loader.load_for_modalias("of:NyT(null)Cnodev"));
        assert_eq!(
            inserted
                .lock()
                .unwrap()
                .iter()
                .filter(|m| *m == "nodev")
                .count(),
            1
        );
    }
}
