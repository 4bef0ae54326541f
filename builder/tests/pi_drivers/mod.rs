//! What emulation cannot show about the Pi 4, checked from the built card: QEMU's raspi4b
//! never puts the card on emmc2 and has no genet, so every enabled node of the card's
//! bcm2711-rpi-4-b.dtb on the way to the root device (the SD hosts, their buses and
//! suppliers) must have its driver in the boot initramfs or built into the card's kernel, and
//! every node on the way to the network (genet, its MDIO bus) in the root. Module drivers are
//! found with the kernel package's whole module index, so a driver left out of the card is a
//! failure, not a silent match of nothing.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use edge_init::modules::index::ModuleIndex;
use edgeimg::image::kernel::devicetree::DeviceTree;
use edgeimg::image::kernel::drivers::{Driver, DriverIndex};
use edgeimg::image::kernel::select::{role_nodes, NodeDriver, Role};

const PI4_DTB: &str = "bcm2711-rpi-4-b.dtb";

/// `file` from the card's FAT boot partition image.
/// `file` of slot a, the one a fresh card boots.
fn boot_file(boot_fat: &Path, file: &str, dir: &Path) -> Vec<u8> {
    let dest = dir.join(file);
    let file = format!("a/{file}");
    let status = Command::new("mcopy")
        .args(["-o", "-i"])
        .arg(boot_fat)
        .arg(format!("::{file}"))
        .arg(&dest)
        .status()
        .expect("mcopy (mtools) runs");
    assert!(status.success(), "mcopy {file} failed");
    std::fs::read(dest).unwrap()
}

/// The files of a zstd-compressed newc cpio archive (no leading `/`).
fn cpio_files(zst: &[u8]) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut input: Box<dyn Read> =
        Box::new(zstd::stream::read::Decoder::new(zst).expect("a zstd stream"));
    loop {
        let reader = cpio::newc::Reader::new(input).expect("the boot initramfs is newc cpio");
        if reader.entry().is_trailer() {
            return files;
        }
        files.insert(reader.entry().name().trim_start_matches("./").to_string());
        input = Box::new(reader.finish().unwrap());
    }
}

/// The kernel package's whole module index and its version, from the mirror's `linux-rpi`.
fn kernel_package_index(mirror: &Path) -> (ModuleIndex, Vec<u8>, String) {
    let dir = mirror.join("v3.23/main/aarch64");
    let apk = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("linux-rpi-"))
        })
        .unwrap_or_else(|| panic!("no linux-rpi in {}", dir.display()));
    let mut texts = std::collections::BTreeMap::new();
    let mut kver = String::new();
    let gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(&apk).unwrap());
    for entry in tar::Archive::new(gz).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let parts: Vec<&str> = path.split('/').collect();
        if let ["lib", "modules", version, file] = parts.as_slice() {
            if file.starts_with("modules.") && !file.ends_with(".bin") {
                kver = version.to_string();
                let mut text = String::new();
                entry.read_to_string(&mut text).unwrap();
                texts.insert(file.to_string(), text);
            }
        }
    }
    let text = |f: &str| texts.get(f).cloned().unwrap_or_default();
    let index = ModuleIndex::parse(
        &text("modules.dep"),
        &text("modules.alias"),
        &text("modules.softdep"),
        &text("modules.builtin"),
    );
    (index, text("modules.builtin.modinfo").into_bytes(), kver)
}

/// Checks the card at `image` (its partitions already extracted: `boot_fat`, and the root's
/// `unsquashfs -l` listing).
pub fn check(image_dir: &Path, boot_fat: &Path, root_listing: &str, mirror: &Path) {
    let scratch = tempfile::tempdir().unwrap();
    let dtb = boot_file(boot_fat, PI4_DTB, scratch.path());
    // gzip'd on the card: the firmware unpacks it.
    let kernel_gz = boot_file(boot_fat, "kernel8.img", scratch.path());
    assert!(
        kernel_gz.starts_with(&[0x1f, 0x8b]),
        "kernel8.img is not gzip'd"
    );
    let mut kernel = Vec::new();
    flate2::read::GzDecoder::new(kernel_gz.as_slice())
        .read_to_end(&mut kernel)
        .expect("kernel8.img gunzips");
    let initramfs = cpio_files(&boot_file(boot_fat, "initramfs.cpio.zst", scratch.path()));
    let root: BTreeSet<String> = root_listing
        .lines()
        .filter_map(|l| l.strip_prefix("squashfs-root/"))
        .map(str::to_string)
        .collect();
    let (index, builtin_modinfo, kver) = kernel_package_index(mirror);
    let drivers = DriverIndex::new(&index, &builtin_modinfo, &kernel);
    let tree = DeviceTree::parse(PI4_DTB, &dtb).unwrap();

    let mut problems = Vec::new();
    let mut module_drivers_on_root_path = Vec::new();
    for (role, place, files) in [
        (Role::Root, "boot initramfs", &initramfs),
        (Role::Root, "root", &root),
        (Role::Network, "root", &root),
    ] {
        let nodes = role_nodes(PI4_DTB, &tree, &drivers, role);
        assert!(!nodes.is_empty(), "no {role:?} nodes in {PI4_DTB}");
        for node in &nodes {
            check_node(node, &index, &kver, place, files, &mut problems);
            if let (Role::Root, Driver::Modules(m)) = (role, &node.driver) {
                if node.because.contains("-supply of") {
                    module_drivers_on_root_path.extend(m.iter().cloned());
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}: drivers missing from the card:\n{}",
        image_dir.display(),
        problems.join("\n")
    );
    // The case the issue found: the SD host's regulators are modules in this kernel.
    for module in ["gpio_regulator", "fixed"] {
        assert!(
            module_drivers_on_root_path.iter().any(|m| m == module),
            "{module} should drive a supply of the SD host: {module_drivers_on_root_path:?}"
        );
    }
    let has = |files: &BTreeSet<String>, ko: &str| files.iter().any(|f| f.ends_with(ko));
    for ko in ["/sdhci-iproc.ko", "/gpio-regulator.ko", "/fixed.ko"] {
        assert!(has(&initramfs, ko), "the boot initramfs lacks {ko}");
    }
    // genet and what it needs on a real board: the MDIO bus and the Broadcom PHY driver.
    for ko in ["/genet.ko", "/mdio-bcm-unimac.ko", "/broadcom.ko"] {
        assert!(has(&root, ko), "the root lacks {ko}");
    }
}

fn check_node(
    node: &NodeDriver,
    index: &ModuleIndex,
    kver: &str,
    place: &str,
    files: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    match &node.driver {
        Driver::Modules(modules) => {
            for module in modules {
                let path = index
                    .path(module)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // Shipped decompressed, whatever the package's compression.
                let stem = path.split(".ko").next().unwrap_or(&path);
                let shipped = format!("lib/modules/{kver}/{stem}.ko");
                if !files.contains(&shipped) {
                    problems.push(format!(
                        "{}: its driver {module} ({shipped}) is not in the {place}",
                        node.describe()
                    ));
                }
            }
        }
        Driver::Missing(_) => {
            problems.push(format!("{}: {}", node.describe(), node.driver.describe()))
        }
        Driver::Builtin(_) | Driver::Parent | Driver::UsbClass => {}
    }
}
