//! The initramfs a disk boot starts from: edge-init, the modules on the way to the root
//! partition with their `modules.*` index (init loads the drivers its devices ask for) and the
//! list of those it loads by name (the root's file system). Init sees `root=PARTUUID=...`,
//! mounts the root and execs the image's init.

use anyhow::{Context, Result};
use edge_config::BOOT_MODULES_PATH;

use crate::image::device::INIT_PATH;
use crate::image::kernel::{index_files, BootKernel, Loaded};
use crate::rootfs::{Meta, NodeKind, RootPath, RootfsTree};

/// Built from the finished image `tree` (its modules already pruned and decompressed), so the
/// initramfs carries the very same init and module files as the root.
pub fn boot_initramfs(tree: &RootfsTree, kernel: &BootKernel, t: u64) -> Result<RootfsTree> {
    let modules = &kernel.modules;
    let mut initramfs = initramfs_skeleton(t)?;
    initramfs.add_dir(path("/newroot")?, Meta::root(0o755, t))?;
    copy_file(tree, &mut initramfs, &path(INIT_PATH)?)?;
    initramfs.add_symlink(path("/init")?, INIT_PATH, Meta::root(0o777, t))?;
    let mut list = String::new();
    for module in modules.boot_initramfs() {
        copy_file(tree, &mut initramfs, &module.path)?;
        if module.loaded == Loaded::AtBoot {
            list.push_str(&module.path.to_absolute());
            list.push('\n');
        }
    }
    let index = index_files(tree, &kernel.version, modules.boot_initramfs())
        .context("the module index of the boot initramfs")?;
    for (file, (data, meta)) in index {
        let at = RootPath::new(&format!("/lib/modules/{}/{file}", kernel.version))?;
        initramfs.add_file(at, data, meta)?;
    }
    initramfs.add_file(
        path(BOOT_MODULES_PATH)?,
        list.into_bytes(),
        Meta::root(0o644, t),
    )?;
    Ok(initramfs)
}

/// What any initramfs needs before its init: the mount points init uses, and `/dev/console`,
/// which the kernel opens for init's stdin/stdout before devtmpfs is mounted.
pub fn initramfs_skeleton(t: u64) -> Result<RootfsTree> {
    let mut initramfs = RootfsTree::new(t);
    for dir in ["/dev", "/proc", "/sys", "/run", "/tmp"] {
        initramfs.add_dir(path(dir)?, Meta::root(0o755, t))?;
    }
    initramfs.insert(
        path("/dev/console")?,
        crate::rootfs::Node {
            kind: NodeKind::CharDevice { major: 5, minor: 1 },
            meta: Meta::root(0o600, t),
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::kernel::devicetree::{tests::sd_card_tree, DeviceTree};
    use crate::image::kernel::drivers::DriverIndex;
    use crate::image::kernel::select::device_tree_requests;
    use crate::image::kernel::ModuleSet;
    use crate::plan::{ModuleRequest, ModuleUse};

    const KVER: &str = "6.1.0-test";

    /// A kernel's modules: the SD host and both regulators as modules, their aliases as
    /// depmod writes them; pin control, clocks and the interrupt controller built in.
    fn modules_tree() -> RootfsTree {
        let mut tree = RootfsTree::new(0);
        let dir = format!("/lib/modules/{KVER}");
        let file = |tree: &mut RootfsTree, rel: &str, data: &str| {
            let at = RootPath::new(&format!("{dir}/{rel}")).unwrap();
            tree.add_file(at, data.as_bytes().to_vec(), Meta::root(0o644, 0))
                .unwrap();
        };
        for ko in [
            "kernel/drivers/mmc/host/sdhci-iproc.ko",
            "kernel/drivers/mmc/host/sdhci-pltfm.ko",
            "kernel/drivers/mmc/host/sdhci.ko",
            "kernel/drivers/regulator/gpio-regulator.ko",
            "kernel/drivers/net/ethernet/broadcom/genet/genet.ko",
            "kernel/fs/squashfs/squashfs.ko",
        ] {
            file(&mut tree, ko, "\u{7f}ELF module");
        }
        file(
            &mut tree,
            "modules.dep",
            "kernel/drivers/mmc/host/sdhci-iproc.ko: kernel/drivers/mmc/host/sdhci-pltfm.ko kernel/drivers/mmc/host/sdhci.ko\n\
             kernel/drivers/mmc/host/sdhci-pltfm.ko: kernel/drivers/mmc/host/sdhci.ko\n\
             kernel/drivers/mmc/host/sdhci.ko:\n\
             kernel/drivers/regulator/gpio-regulator.ko:\n\
             kernel/drivers/net/ethernet/broadcom/genet/genet.ko:\n\
             kernel/fs/squashfs/squashfs.ko:\n",
        );
        file(
            &mut tree,
            "modules.alias",
            "alias of:N*T*Cbrcm,bcm2711-emmc2C* sdhci_iproc\n\
             alias of:N*T*Cbrcm,bcm2711-emmc2 sdhci_iproc\n\
             alias of:N*T*Cregulator-gpioC* gpio_regulator\n\
             alias of:N*T*Cregulator-gpio gpio_regulator\n\
             alias of:N*T*Cbrcm,bcm2711-genet-v5 genet\n",
        );
        file(
            &mut tree,
            "modules.builtin",
            "kernel/drivers/pinctrl/bcm/pinctrl-bcm2835.ko\n",
        );
        tree.add_file(
            RootPath::new(INIT_PATH).unwrap(),
            b"init".to_vec(),
            Meta::root(0o755, 0),
        )
        .unwrap();
        tree
    }

    /// The built-in drivers' match tables, as they sit in a kernel image.
    fn kernel_image() -> Vec<u8> {
        let mut image = b"\x00\x00code\x00".to_vec();
        for compatible in [
            "simple-bus",
            "brcm,bcm2711-gpio",
            "brcm,bcm2711-cprman",
            "arm,gic-400",
            "mmc-pwrseq-simple",
        ] {
            image.extend_from_slice(compatible.as_bytes());
            image.push(0);
        }
        image
    }

    #[test]
    fn a_supplier_whose_driver_is_a_module_is_in_the_boot_initramfs() {
        let mut tree = modules_tree();
        let dt = DeviceTree::parse("test.dtb", &sd_card_tree()).unwrap();
        let index = ModuleSet::index(&tree, KVER).unwrap();
        let image = kernel_image();
        let drivers = DriverIndex::new(&index, b"", &image);
        let (mut requests, nodes) = device_tree_requests(&[("test.dtb".into(), dt)], &drivers);
        drop(drivers);
        requests.push(ModuleRequest {
            name: "squashfs".into(),
            why: "the root's file system".into(),
            used: ModuleUse::AtBoot,
            in_boot_initramfs: true,
        });
        let modules = ModuleSet::install(&mut tree, KVER, &requests).unwrap();
        let regulator = nodes
            .iter()
            .find(|n| n.path == "/sd_io_1v8_reg")
            .expect("the SD host's regulator is on the root path");
        assert_eq!(regulator.because, "vqmmc-supply of /soc/mmc@7e340000");
        let kernel = BootKernel {
            image,
            gzipped: None,
            packaged_path: RootPath::new("/boot/vmlinuz-test").unwrap(),
            version: KVER.into(),
            modules,
            device_tree_nodes: nodes,
        };
        assert!(
            kernel.undriven_nodes().is_empty(),
            "{:?}",
            kernel.undriven_nodes()
        );

        let initramfs = boot_initramfs(&tree, &kernel, 0).unwrap();
        let has = |rel: &str| {
            initramfs.contains(&RootPath::new(&format!("/lib/modules/{KVER}/{rel}")).unwrap())
        };
        for module in [
            "kernel/drivers/regulator/gpio-regulator.ko",
            "kernel/drivers/mmc/host/sdhci-iproc.ko",
            "kernel/drivers/mmc/host/sdhci.ko",
            "kernel/fs/squashfs/squashfs.ko",
        ] {
            assert!(has(module), "{module} is not in the boot initramfs");
        }
        assert!(
            !has("kernel/drivers/net/ethernet/broadcom/genet/genet.ko"),
            "nothing on the root path needs genet"
        );
        let text = |rel: &str| {
            let at = RootPath::new(rel).unwrap();
            String::from_utf8(initramfs.file_data(&at).unwrap().to_vec()).unwrap()
        };
        // Init finds the regulator's driver by its modalias, and loads squashfs by name.
        assert!(text(&format!("/lib/modules/{KVER}/modules.alias"))
            .contains("of:N*T*Cregulator-gpio gpio_regulator"));
        assert_eq!(
            text(BOOT_MODULES_PATH),
            format!("/lib/modules/{KVER}/kernel/fs/squashfs/squashfs.ko\n")
        );
    }
}
