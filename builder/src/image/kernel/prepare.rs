//! From an installed kernel package to what boots: the kernel image (unwrapped where QEMU and
//! the Pi firmware need a raw Image), its version, and the modules the image ships: what the
//! board's device trees need, what the board and recipe name, with everything those need.

use anyhow::{bail, Context, Result};

use super::devicetree::DeviceTree;
use super::select::{device_tree_requests, NodeDriver};
use super::{packaged_gzip, unwrap_kernel, ModuleSet};
use crate::image::kernel::drivers::{Driver, DriverIndex};
use crate::plan::Plan;
use crate::rootfs::{FileData, NodeKind, RootPath, RootfsTree};

pub struct BootKernel {
    /// The bootable image (`-kernel`, or `kernel8.img` on a Pi).
    pub image: Vec<u8>,
    /// The package's own gzip stream of `image`, where it ships one (see [`packaged_gzip`]).
    pub gzipped: Option<FileData>,
    /// Where the package put it, e.g. `/boot/vmlinuz-virt`.
    pub packaged_path: RootPath,
    pub version: String,
    pub modules: ModuleSet,
    /// The device-tree nodes on the way to the root device and the network, with their
    /// drivers.
    pub device_tree_nodes: Vec<NodeDriver>,
}

impl BootKernel {
    /// Nodes on those paths that nothing in the image drives.
    pub fn undriven_nodes(&self) -> Vec<String> {
        self.device_tree_nodes
            .iter()
            .filter(|n| matches!(n.driver, Driver::Missing(_)))
            .map(|n| {
                format!(
                    "{}: neither a module in {} nor built into its kernel drives it",
                    n.describe(),
                    self.version
                )
            })
            .collect()
    }
}

/// Find the kernel the plan's kernel package installed, unwrap it, and cut `/lib/modules` down
/// to the modules the device trees, board and recipe want (with what they need).
pub fn prepare_kernel(plan: &Plan, tree: &mut RootfsTree) -> Result<BootKernel> {
    let packaged_path = find_kernel(tree, &plan.kernel.package)?;
    let packaged = tree
        .file_data(&packaged_path)
        .expect("find_kernel returns a regular file");
    let image = unwrap_kernel(packaged).with_context(|| format!("kernel {packaged_path}"))?;
    let gzipped = packaged_gzip(packaged);
    let version = kernel_version(tree, &plan.kernel.package)?;
    let context = || format!("kernel modules for {} {version}", plan.kernel.package);
    let trees = device_trees(tree, &plan.kernel.device_trees)?;
    let index = ModuleSet::index(tree, &version).with_context(context)?;
    let modinfo = RootPath::new(&format!("/lib/modules/{version}/modules.builtin.modinfo"))?;
    let builtin_modinfo = tree
        .file_data(&modinfo)
        .map(|d| d.to_vec())
        .unwrap_or_default();
    let drivers = DriverIndex::new(&index, &builtin_modinfo, &image);
    let (mut requests, device_tree_nodes) = device_tree_requests(&trees, &drivers);
    requests.extend(plan.kernel.modules.iter().cloned());
    let modules = ModuleSet::install(tree, &version, &requests).with_context(context)?;
    Ok(BootKernel {
        image,
        gzipped,
        packaged_path,
        version,
        modules,
        device_tree_nodes,
    })
}

/// The named device trees, wherever the kernel package put them under /boot.
fn device_trees(tree: &RootfsTree, names: &[String]) -> Result<Vec<(String, DeviceTree)>> {
    let mut found = Vec::new();
    for name in names {
        let path = tree
            .iter()
            .find(|(p, n)| {
                p.as_str().starts_with("boot/")
                    && p.file_name() == name
                    && matches!(n.kind, NodeKind::File(_))
            })
            .map(|(p, _)| p.clone())
            .with_context(|| {
                format!("the board's device tree {name} is not under /boot; does the kernel package ship it?")
            })?;
        let dtb = tree.file_data(&path).expect("a regular file");
        found.push((name.clone(), DeviceTree::parse(name, dtb)?));
    }
    Ok(found)
}

/// `/boot/vmlinuz-<flavor>` for `linux-<flavor>`, else the only `/boot/vmlinuz*`.
fn find_kernel(tree: &RootfsTree, package: &str) -> Result<RootPath> {
    let boot = RootPath::new("/boot")?;
    let candidates: Vec<RootPath> = tree
        .children(&boot)
        .filter(|(p, n)| {
            p.file_name().starts_with("vmlinuz") && matches!(n.kind, NodeKind::File(_))
        })
        .map(|(p, _)| p.clone())
        .collect();
    let flavor = package.strip_prefix("linux-").unwrap_or(package);
    let preferred = RootPath::new(&format!("/boot/vmlinuz-{flavor}"))?;
    if candidates.contains(&preferred) {
        return Ok(preferred);
    }
    match candidates.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!("the kernel package {package} put no /boot/vmlinuz* into the image; is kernel.package a kernel?"),
        many => bail!(
            "several kernels in /boot ({}); set kernel.package to the one to boot",
            many.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The version folder under `/lib/modules` (one per installed kernel; the flavor picks one).
fn kernel_version(tree: &RootfsTree, package: &str) -> Result<String> {
    let dir = RootPath::new("/lib/modules")?;
    let versions: Vec<String> = tree
        .children(&dir)
        .filter(|(_, n)| n.kind == NodeKind::Dir)
        .map(|(p, _)| p.file_name().to_string())
        .collect();
    let flavor = package.strip_prefix("linux-").unwrap_or(package);
    let matching: Vec<String> = versions
        .iter()
        .filter(|v| v.ends_with(flavor))
        .cloned()
        .collect();
    match (matching.as_slice(), versions.as_slice()) {
        ([one], _) | (_, [one]) => Ok(one.clone()),
        _ if versions.is_empty() => {
            bail!("the kernel package {package} installed no /lib/modules/<version>")
        }
        _ => bail!(
            "cannot tell which of /lib/modules/{{{}}} belongs to {package}",
            versions.join(",")
        ),
    }
}
