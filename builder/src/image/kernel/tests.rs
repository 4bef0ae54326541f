//! The kernel stage against Alpine's real linux-virt kernel and modules.

use super::testdata::{modules_tree, packaged_kernel, KVER};
use super::*;
use crate::plan::ModuleRequest;
use crate::rootfs::RootPath;
use edgeimg_test_support::Arch;

#[test]
fn unwraps_the_real_aarch64_zboot_kernel() {
    let raw = packaged_kernel(Arch::Aarch64);
    assert_eq!(KernelFormat::detect(&raw), KernelFormat::EfiZboot);
    let image = unwrap_kernel(&raw).unwrap();
    assert_eq!(&image[56..60], b"ARM\x64");
    assert!(
        image.len() > raw.len(),
        "the Image is the decompressed payload"
    );
    // Unwrapping is idempotent: a raw Image comes back unchanged.
    assert_eq!(unwrap_kernel(&image).unwrap(), image);
}

#[test]
fn x86_bzimage_is_returned_as_is() {
    let raw = packaged_kernel(Arch::X86_64);
    assert_eq!(KernelFormat::detect(&raw), KernelFormat::BzImage);
    assert_eq!(unwrap_kernel(&raw).unwrap(), raw);
}

/// Requests by name, as a recipe's kernel.modules makes them.
fn by_name(names: &[&str]) -> Vec<ModuleRequest> {
    names
        .iter()
        .map(|n| ModuleRequest::at_boot(n, "test"))
        .collect()
}

fn position(set: &ModuleSet, name: &str) -> usize {
    set.names()
        .position(|n| n.as_str() == name)
        .unwrap_or_else(|| panic!("{name} not in {:?}", set.names().collect::<Vec<_>>()))
}

#[test]
fn virtio_net_closure_loads_failover_first() {
    let tree = modules_tree(Arch::Aarch64);
    let set = ModuleSet::resolve(
        &tree,
        KVER,
        &by_name(&["virtio-net", "virtio_blk", "squashfs", "ext4", "vfat"]),
    )
    .unwrap();
    assert!(position(&set, "failover") < position(&set, "net_failover"));
    assert!(position(&set, "net_failover") < position(&set, "virtio_net"));
    assert!(position(&set, "jbd2") < position(&set, "ext4"));
    assert!(position(&set, "fat") < position(&set, "vfat"));
    let mut names: Vec<_> = set.names().map(|n| n.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), set.modules.len(), "each module once");
}

#[test]
fn prune_keeps_only_the_closure_decompressed() {
    let mut tree = modules_tree(Arch::Aarch64);
    let before = tree.len();
    let dir = RootPath::new(&format!("lib/modules/{KVER}")).unwrap();
    let kmod_only = [
        "modules.builtin.modinfo",
        "modules.builtin.bin",
        "modules.builtin.alias.bin",
    ];
    for file in kmod_only {
        assert!(
            tree.contains(&dir.join(file).unwrap()),
            "the package has {file}"
        );
    }
    let set = ModuleSet::install(&mut tree, KVER, &by_name(&["virtio_net", "ext4"])).unwrap();
    let kos: Vec<_> = tree
        .iter()
        .filter(|(p, _)| p.starts_with(&dir) && p.as_str().contains(".ko"))
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(kos.len(), set.modules.len());
    for m in &set.modules {
        let data = tree
            .file_data(&m.path)
            .unwrap_or_else(|| panic!("{} missing", m.path));
        assert_eq!(&data[..4], b"\x7fELF", "{} is decompressed", m.path);
        assert!(m.path.as_str().ends_with(".ko"));
    }
    let dep = String::from_utf8(
        tree.file_data(&dir.join("modules.dep").unwrap())
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(dep.lines().count(), set.modules.len());
    assert!(dep.contains("kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko"), "{dep}");
    assert!(!dep.contains(".gz"));
    let alias = String::from_utf8(
        tree.file_data(&dir.join("modules.alias").unwrap())
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        alias.contains("virtio:d00000001v*"),
        "virtio_net's alias stays"
    );
    assert!(alias
        .lines()
        .filter(|l| !l.starts_with('#'))
        .all(|l| set.names().any(|n| l.ends_with(n.as_str()))));
    assert!(tree.contains(&dir.join("modules.builtin").unwrap()));
    assert!(
        !tree.contains(&dir.join("modules.dep.bin").unwrap()),
        "stale index dropped"
    );
    for file in kmod_only {
        assert!(
            !tree.contains(&dir.join(file).unwrap()),
            "{file} is kmod's alone"
        );
    }
    assert!(tree.len() < before);
}

#[test]
fn missing_module_names_close_ones() {
    let tree = modules_tree(Arch::Aarch64);
    let err = ModuleSet::resolve(&tree, KVER, &by_name(&["virtio_nett"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("virtio_nett") && err.contains("virtio_net"),
        "{err}"
    );
    // Built-in modules count as satisfied and are reported, not loaded.
    let set = ModuleSet::resolve(&tree, KVER, &by_name(&["virtio_pci"])).unwrap();
    assert!(set.modules.is_empty());
    assert_eq!(set.builtin, [ModuleName::new("virtio_pci")]);
}
