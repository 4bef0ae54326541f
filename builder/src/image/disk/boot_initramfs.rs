//! The initramfs a disk boot starts from: edge-init, the modules that reach the root partition
//! and their list. Init sees `root=PARTUUID=...`, mounts the root and execs the image's init.

use anyhow::{Context, Result};
use edge_config::BOOT_MODULES_PATH;

use crate::image::device::INIT_PATH;
use crate::image::kernel::BootKernel;
use crate::image::kernel::ModuleSet;
use crate::rootfs::{Meta, NodeKind, RootPath, RootfsTree};

/// Built from the finished image `tree` (its modules already pruned and decompressed), so the
/// initramfs carries the very same init and module files as the root.
pub fn boot_initramfs(
    tree: &RootfsTree,
    kernel: &BootKernel,
    root_modules: &[&str],
    t: u64,
) -> Result<RootfsTree> {
    let modules = ModuleSet::resolve(tree, &kernel.version, root_modules)
        .context("modules for the boot initramfs")?;
    let mut initramfs = RootfsTree::new(t);
    for dir in ["/dev", "/proc", "/sys", "/run", "/tmp", "/newroot"] {
        initramfs.add_dir(path(dir)?, Meta::root(0o755, t))?;
    }
    // The kernel opens it for init's stdin/stdout before devtmpfs is mounted.
    initramfs.insert(
        path("/dev/console")?,
        crate::rootfs::Node {
            kind: NodeKind::CharDevice { major: 5, minor: 1 },
            meta: Meta::root(0o600, t),
        },
    )?;
    copy_file(tree, &mut initramfs, &path(INIT_PATH)?)?;
    initramfs.add_symlink(path("/init")?, INIT_PATH, Meta::root(0o777, t))?;
    let mut list = String::new();
    for module in &modules.modules {
        copy_file(tree, &mut initramfs, &module.path)?;
        list.push_str(&module.path.to_absolute());
        list.push('\n');
    }
    initramfs.add_file(
        path(BOOT_MODULES_PATH)?,
        list.into_bytes(),
        Meta::root(0o644, t),
    )?;
    Ok(initramfs)
}

fn copy_file(from: &RootfsTree, to: &mut RootfsTree, file: &RootPath) -> Result<()> {
    let node = from
        .get(file)
        .with_context(|| format!("{file} is not in the image"))?;
    let data = from
        .file_data(file)
        .with_context(|| format!("{file} is not a regular file"))?
        .clone();
    to.add_file(file.clone(), data, node.meta.clone())
        .with_context(|| format!("cannot add {file} to the boot initramfs"))
}

fn path(p: &str) -> Result<RootPath> {
    Ok(RootPath::new(p)?)
}
