//! From an installed kernel package to what boots: the kernel image (unwrapped where QEMU and
//! the Pi firmware need a raw Image), its version, and the modules the image loads.

use anyhow::{bail, Context, Result};

use super::{unwrap_kernel, ModuleSet};
use crate::plan::Plan;
use crate::rootfs::{NodeKind, RootPath, RootfsTree};

pub struct BootKernel {
    /// The bootable image (`-kernel`, or `kernel8.img` on a Pi).
    pub image: Vec<u8>,
    /// Where the package put it, e.g. `/boot/vmlinuz-virt`.
    pub packaged_path: RootPath,
    pub version: String,
    pub modules: ModuleSet,
}

/// Find the kernel the plan's kernel package installed, unwrap it, and cut `/lib/modules` down
/// to the modules the board and recipe want (with their dependencies).
pub fn prepare_kernel(plan: &Plan, tree: &mut RootfsTree) -> Result<BootKernel> {
    let packaged_path = find_kernel(tree, &plan.kernel.package)?;
    let packaged = tree
        .file_data(&packaged_path)
        .expect("find_kernel returns a regular file");
    let image = unwrap_kernel(packaged).with_context(|| format!("kernel {packaged_path}"))?;
    let version = kernel_version(tree, &plan.kernel.package)?;
    let wanted: Vec<&str> = plan.kernel.modules.iter().map(String::as_str).collect();
    let modules = ModuleSet::install(tree, &version, &wanted)
        .with_context(|| format!("kernel modules for {} {version}", plan.kernel.package))?;
    Ok(BootKernel {
        image,
        packaged_path,
        version,
        modules,
    })
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
