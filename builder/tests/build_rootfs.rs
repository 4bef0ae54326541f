//! `edgeimg build` end to end against the offline mirror: the rootfs a user gets, and the
//! clear failures a user gets from bad recipes, bad mirrors and damaged caches.

mod common;
mod pi_drivers;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{
    assert_valid_spdx, build_with_mirror, edgeimg, mirror, project_root, recipe_text, shared_cache,
    stderr, tiny_mlp_recipe,
};

/// Entries of a tar archive: path -> (uid, gid, type byte).
fn tar_entries(path: &Path) -> BTreeMap<String, (u64, u64, u8)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let name = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            (
                name,
                (h.uid().unwrap(), h.gid().unwrap(), h.entry_type().as_byte()),
            )
        })
        .collect()
}

/// Whether apk's `installed` database has an entry for `package`.
fn apk_db_lists(installed: &str, package: &str) -> bool {
    installed
        .split("\n\n")
        .any(|entry| entry.lines().any(|l| l == format!("P:{package}")))
}

/// The contents of one file in a tar archive.
fn tar_file(path: &Path, name: &str) -> Vec<u8> {
    tar::Archive::new(std::fs::File::open(path).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().ends_with(name))
        .map(|mut e| {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            data
        })
        .unwrap_or_else(|| panic!("{name} is not in {}", path.display()))
}

/// Build a project recipe (none asks for a debug shell) into a fresh folder, check its rootfs
/// tar, and hand the folder back.
fn build_recipe(recipe: &str, kernel_flavor: &str) -> tempfile::TempDir {
    build_recipe_at(&project_root().join("recipes").join(recipe), kernel_flavor)
}

fn build_recipe_at(recipe_path: &Path, kernel_flavor: &str) -> tempfile::TempDir {
    let recipe = recipe_path.file_name().unwrap().to_string_lossy();
    let out = tempfile::tempdir().unwrap();
    let result = build_with_mirror(recipe_path, out.path(), &shared_cache(), &mirror().dir);
    assert!(
        result.status.success(),
        "build {recipe} failed:\n{}",
        stderr(&result)
    );
    let name = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".rootfs.tar"))
        .expect("a rootfs tar");
    let tar_path = out.path().join(&name);
    let entries = tar_entries(&tar_path);
    for wanted in ["etc/passwd", "lib/apk/db/installed", "etc/apk/world"] {
        assert!(
            entries.contains_key(wanted),
            "{recipe}: {wanted} missing from {name}"
        );
    }
    // The kernel boots from outside the root, and the kernel package comes without the
    // userspace that rebuilds initramfs images; the manifest says what was left out, and why.
    let in_boot: Vec<&String> = entries
        .keys()
        .filter(|p| p.starts_with("boot/") && p.as_str() != "boot/")
        .collect();
    assert!(
        in_boot.is_empty(),
        "{recipe}: /boot is not empty: {in_boot:?}"
    );
    // No shell and no C library: edge-init and edge-runtime are static.
    let loader = entries.keys().find(|p| p.starts_with("lib/ld-musl"));
    assert!(loader.is_none(), "{recipe}: {loader:?} is in the image");
    for never in [
        "bin/busybox",
        "bin/sh",
        "sbin/mkinitfs",
        "sbin/apk",
        "usr/lib/libcrypto.so.3",
        "sbin/cryptsetup",
    ] {
        assert!(
            !entries.contains_key(never),
            "{recipe}: {never} is in the image"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let left_out = manifest["left_out"].as_array().expect("a left_out list");
    let said = |pred: &dyn Fn(&str, &str) -> bool| {
        left_out.iter().any(|l| {
            pred(
                l["what"].as_str().unwrap_or_default(),
                l["reason"].as_str().unwrap_or_default(),
            )
        })
    };
    assert!(
        said(&|what, reason| what.starts_with("/boot/vmlinuz")
            && reason.contains("boots it from outside")),
        "{recipe}: the kernel's absence is not recorded: {left_out:?}"
    );
    assert!(
        said(&|what, reason| what.contains("dependencies of linux-") && reason.contains("mkinitfs")),
        "{recipe}: the kernel package's dependencies are not recorded: {left_out:?}"
    );
    assert!(
        said(
            &|what, reason| what.starts_with("/bin/sh (dependencies of alpine-baselayout-")
                && reason.contains("runtime.debug_shell is off")
        ),
        "{recipe}: the shell's absence is not recorded: {left_out:?}"
    );
    assert!(
        entries.keys().any(|p| p.starts_with("lib/modules/")
            && p.contains(kernel_flavor)
            && p.contains(".ko")),
        "{recipe}: no {kernel_flavor} kernel modules"
    );
    // Built by whoever ran the test, yet everything belongs to root, as `tar tvf` shows, but
    // the API's secrets: readable by the server's account (1000) alone.
    let listing = Command::new("tar")
        .arg("tvf")
        .arg(&tar_path)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for line in listing
        .lines()
        .filter(|l| l.contains("etc/edgeimg/secrets"))
    {
        assert!(
            (line.starts_with("dr-x------ 1000/1000 ") && line.ends_with("etc/edgeimg/secrets/"))
                || line.starts_with("-r-------- 1000/1000 "),
            "{recipe}: a secret not the server's alone: {line}"
        );
    }
    let not_root: Vec<&str> = listing
        .lines()
        .filter(|l| !l.contains(" root/root ") && !l.contains("etc/edgeimg/secrets"))
        .collect();
    assert!(
        not_root.is_empty(),
        "{recipe}: entries not owned by root:\n{}",
        not_root.join("\n")
    );

    let installed = String::from_utf8(tar_file(&tar_path, "lib/apk/db/installed")).unwrap();
    assert!(
        apk_db_lists(&installed, "alpine-baselayout"),
        "alpine-baselayout not in the apk db"
    );
    for pkg in ["busybox", "musl"] {
        assert!(!apk_db_lists(&installed, pkg), "{pkg} is in the apk db");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let packages = manifest["packages"].as_array().unwrap();
    assert!(
        packages
            .iter()
            .any(|p| p["name"] == "alpine-baselayout"
                && p["apk_sha256"].as_str().unwrap().len() == 64)
    );
    check_sbom(out.path(), &manifest);
    check_device_repositories(&tar_path);
    check_engine(&tar_path, &entries, &manifest);
    out
}

const ENGINE_DIR: &str = "usr/lib/edgeimg/onnxruntime";

/// `readelf`'s view of one file of the image: its interpreter and `DT_NEEDED` names.
fn elf_links(data: &[u8]) -> (Option<String>, Vec<String>) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), data).unwrap();
    let text = run_tool(
        "readelf",
        &["-d", "-l", "-W", file.path().to_str().unwrap()],
    );
    let between = |line: &str, open: &str| {
        line.split_once(open)
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(name, _)| name.to_string())
    };
    let interpreter = text
        .lines()
        .find_map(|l| between(l, "[Requesting program interpreter: "));
    let needed = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| between(l, "Shared library: ["))
        .collect();
    (interpreter, needed)
}

/// tract: one static edge-runtime and nothing else. onnxruntime: a glibc edge-runtime whose
/// loader and every library it or libonnxruntime needs are in the engine's own folder, and the
/// SBOM names where each came from.
fn check_engine(
    tar: &Path,
    entries: &BTreeMap<String, (u64, u64, u8)>,
    manifest: &serde_json::Value,
) {
    let engine = &manifest["engine"];
    let runtime = tar_file(tar, "usr/bin/edge-runtime");
    let (interpreter, needed) = elf_links(&runtime);
    let in_engine_dir: Vec<&String> = entries
        .iter()
        .filter(|(p, (_, _, kind))| p.starts_with(&format!("{ENGINE_DIR}/")) && *kind == b'0')
        .map(|(p, _)| p)
        .collect();
    match engine["name"].as_str() {
        Some("tract") => {
            assert_eq!(
                (interpreter, needed),
                (None, vec![]),
                "edge-runtime is not static"
            );
            assert!(in_engine_dir.is_empty(), "{in_engine_dir:?}");
        }
        Some("onnxruntime") => {
            let arch = manifest["arch"].as_str().unwrap();
            let loader = match arch {
                "x86_64" => "ld-linux-x86-64.so.2",
                _ => "ld-linux-aarch64.so.1",
            };
            assert_eq!(interpreter, Some(format!("/{ENGINE_DIR}/{loader}")));
            let library = format!("{ENGINE_DIR}/libonnxruntime.so.1.31.1");
            let mut unresolved = Vec::new();
            for (file, wants) in [("edge-runtime".to_string(), needed)].into_iter().chain(
                in_engine_dir
                    .iter()
                    .map(|p| ((*p).clone(), elf_links(&tar_file(tar, p)).1)),
            ) {
                for name in wants {
                    if !entries.contains_key(&format!("{ENGINE_DIR}/{name}")) {
                        unresolved.push(format!("{file} needs {name}"));
                    }
                }
            }
            assert!(
                unresolved.is_empty(),
                "not in /{ENGINE_DIR}: {unresolved:?}"
            );
            assert!(entries.contains_key(&library), "{in_engine_dir:?}");
            let debian = if arch == "x86_64" { "amd64" } else { "arm64" };
            let sbom = sbom(tar.parent().unwrap(), manifest);
            for package in [
                "onnxruntime".to_string(),
                format!("libc6-{debian}-cross"),
                format!("libstdc++6-{debian}-cross"),
            ] {
                let entry = sbom["packages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == package.as_str())
                    .unwrap_or_else(|| panic!("SBOM lacks {package}"));
                assert!(!entry["versionInfo"].as_str().unwrap().is_empty());
                assert_eq!(
                    entry["checksums"][0]["checksumValue"]
                        .as_str()
                        .unwrap()
                        .len(),
                    64
                );
            }
        }
        other => panic!("manifest names no engine: {other:?}"),
    }
}

/// The SPDX SBOM beside the image names every installed package with its version and
/// checksums, our binaries, the kernel and the model.
fn sbom(out: &Path, manifest: &serde_json::Value) -> serde_json::Value {
    let name = manifest["name"].as_str().unwrap();
    serde_json::from_slice(&std::fs::read(out.join(format!("{name}.spdx.json"))).unwrap()).unwrap()
}

fn check_sbom(out: &Path, manifest: &serde_json::Value) {
    let sbom = sbom(out, manifest);
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let listed = sbom["packages"].as_array().unwrap();
    for package in manifest["packages"].as_array().unwrap() {
        let entry = listed
            .iter()
            .find(|p| p["name"] == package["name"])
            .unwrap_or_else(|| panic!("SBOM lacks {}", package["name"]));
        assert_eq!(entry["versionInfo"], package["version"]);
        let checksums = entry["checksums"].as_array().unwrap();
        assert!(
            checksums
                .iter()
                .any(|c| c["algorithm"] == "SHA256" && c["checksumValue"] == package["apk_sha256"]),
            "{entry}"
        );
        assert!(entry["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .starts_with("pkg:apk/alpine/"));
    }
    for ours in ["edge-init", "edge-runtime", "kernel"] {
        let entry = listed.iter().find(|p| p["name"] == ours).unwrap();
        assert_eq!(
            entry["checksums"][0]["checksumValue"]
                .as_str()
                .unwrap()
                .len(),
            64
        );
    }
    for model in manifest["models"].as_array().unwrap() {
        assert!(listed
            .iter()
            .any(|p| p["name"] == model["name"]
                && p["checksums"][0]["checksumValue"] == model["sha256"]));
    }
    assert_valid_spdx(&out.join(format!("{}.spdx.json", manifest["name"].as_str().unwrap())));
    // A build host's folder is nowhere a reader of the SBOM would follow it.
    let host = mirror().dir.display().to_string();
    for p in listed {
        let location = p["downloadLocation"].as_str().unwrap();
        assert!(
            location == "NOASSERTION" || location.starts_with("https://"),
            "{location}"
        );
        assert!(!location.contains(&host), "{location}");
    }
}

/// Every recipe in recipes/ is built (and its SBOM validated) by a test of this file.
const RECIPES_BUILT_HERE: [&str; 5] = [
    "ab-aarch64.toml",
    "ocr-aarch64.toml",
    "pi.toml",
    "qemu-aarch64.toml",
    "qemu-x86_64.toml",
];

/// The A/B recipe's disk: GPT with the boot partition, two root slots and data, and its
/// `.update` a tar whose signed manifest comes first and lists every part with its sha256.
#[test]
fn ab_recipe_builds_a_disk_with_two_slots_and_a_signed_update() {
    let out = tempfile::tempdir().unwrap();
    let result = build_with_mirror(
        &project_root().join("recipes/ab-aarch64.toml"),
        out.path(),
        &shared_cache(),
        &mirror().dir,
    );
    assert!(result.status.success(), "{}", stderr(&result));
    let image = out.path().join("edge-ab-arm64.img");
    let table: serde_json::Value =
        serde_json::from_str(&run_tool("sfdisk", &["-J", image.to_str().unwrap()])).unwrap();
    assert_eq!(table["partitiontable"]["label"], "gpt");
    let names: Vec<&str> = table["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["boot", "root-a", "root-b", "data"]);

    let file = std::fs::File::open(out.path().join("edge-ab-arm64.update")).unwrap();
    let mut archive = tar::Archive::new(file);
    let mut members = Vec::new();
    let mut manifest = serde_json::Value::Null;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if name == "update.json" {
            manifest = serde_json::from_slice(&bytes).unwrap();
        } else if name != "update.json.sig" {
            let part = manifest["parts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{name} is not in the manifest"));
            assert_eq!(
                part["sha256"],
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                "{name}"
            );
        }
        members.push(name);
    }
    assert_eq!(
        members[..3],
        ["update.json", "update.json.sig", "root.squashfs"]
    );
    for wanted in [
        "boot/vmlinuz",
        "boot/initramfs.cpio.zst",
        "slot-a/cmdline.txt",
        "slot-b/config.txt",
    ] {
        assert!(members.iter().any(|m| m == wanted), "{wanted}: {members:?}");
    }
    assert_eq!(manifest["version"], "1");
    assert_eq!(manifest["board"], "qemu-aarch64");
    let built: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    check_sbom(out.path(), &built);
}

#[test]
fn every_recipe_is_built_by_a_test_here() {
    let mut found: Vec<String> = std::fs::read_dir(project_root().join("recipes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    found.sort();
    assert_eq!(
        found, RECIPES_BUILT_HERE,
        "add a build test for the new recipe"
    );
}

/// What a device is told to fetch from: public URLs only, never the build host's mirror.
fn check_device_repositories(tar_path: &Path) {
    let text = String::from_utf8(tar_file(tar_path, "etc/apk/repositories")).unwrap();
    assert!(!text.trim().is_empty());
    for line in text.lines() {
        assert!(line.starts_with("https://"), "{line}");
    }
    assert!(
        !text.contains(&mirror().dir.display().to_string()),
        "{text}"
    );
}

#[test]
fn pi_rootfs_has_alpine_base_kernel_and_db_and_its_card_every_pi4_driver() {
    let out = build_recipe("pi.toml", "");
    check_pi_sd_card(&out.path().join("edge-pi.img"));
}

/// A host tool's stdout; the test fails with its stderr if it reports a problem.
fn run_tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Partition `number` of `image` (start and size in sectors from `sfdisk -J`) as its own file.
fn extract_partition(image: &Path, table: &serde_json::Value, number: usize, dest: &Path) {
    let part = &table["partitiontable"]["partitions"][number - 1];
    let (start, size) = (
        part["start"].as_u64().unwrap(),
        part["size"].as_u64().unwrap(),
    );
    let data = std::fs::read(image).unwrap();
    std::fs::write(
        dest,
        &data[(start * 512) as usize..((start + size) * 512) as usize],
    )
    .unwrap();
}

/// The SD card is what the Pi firmware and Linux expect, checked with the standard tools.
fn check_pi_sd_card(image: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let table: serde_json::Value =
        serde_json::from_str(&run_tool("sfdisk", &["-J", image.to_str().unwrap()])).unwrap();
    let parts = table["partitiontable"]["partitions"].as_array().unwrap();
    assert_eq!(
        table["partitiontable"]["label"], "dos",
        "the Pi firmware reads MBR only"
    );
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["c", "83", "83", "83"],
        "FAT32 boot, squashfs roots of slot a and b, ext4 data"
    );
    assert_eq!(parts[0]["bootable"], true);

    let boot = dir.path().join("boot.fat");
    extract_partition(image, &table, 1, &boot);
    run_tool("fsck.vfat", &["-n", boot.to_str().unwrap()]);
    let listing =
        run_tool("mdir", &["-/", "-b", "-i", boot.to_str().unwrap(), "::"]).to_lowercase();
    // The firmware in the partition's root; what boots a slot in its folder (os_prefix).
    for file in [
        "start4.elf",
        "fixup4.dat",
        "bootcode.bin",
        "start.elf",
        "fixup.dat",
        "config.txt",
        "a/config.txt",
        "a/cmdline.txt",
        "a/kernel8.img",
        "a/initramfs.cpio.zst",
        "a/bcm2711-rpi-4-b.dtb",
        "a/bcm2837-rpi-3-b.dtb",
    ] {
        assert!(
            listing.contains(&format!("::/{file}")),
            "boot partition lacks {file}:\n{listing}"
        );
    }
    assert!(
        listing.lines().any(|l| l == "::/b/")
            && !listing
                .lines()
                .any(|l| l.starts_with("::/b/") && l != "::/b/"),
        "slot b's folder is there and empty on a fresh card:\n{listing}"
    );
    let config = run_tool("mtype", &["-i", boot.to_str().unwrap(), "::config.txt"]);
    for line in [
        "arm_64bit=1",
        "enable_uart=1",
        "kernel=kernel8.img",
        "os_prefix=a/",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "config.txt lacks {line}:\n{config}"
        );
    }
    // A slot switch rewrites this one sector in place.
    assert_eq!(config.len(), 512, "config.txt is one sector:\n{config}");
    let slot_config = run_tool("mtype", &["-i", boot.to_str().unwrap(), "::a/config.txt"]);
    assert_eq!(config, slot_config, "the top config.txt is slot a's");
    let cmdline = run_tool("mtype", &["-i", boot.to_str().unwrap(), "::a/cmdline.txt"]);
    let root_uuid = format!(
        "root=PARTUUID={}-02",
        table["partitiontable"]["id"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x")
    );
    assert!(
        cmdline.contains(&root_uuid) && cmdline.contains("edgeimg.slot=a"),
        "{cmdline} should name {root_uuid} and slot a"
    );

    let root = dir.path().join("root.squashfs");
    extract_partition(image, &table, 2, &root);
    let files = run_tool("unsquashfs", &["-l", root.to_str().unwrap()]);
    for wanted in [
        "sbin/edge-init",
        "usr/bin/edge-runtime",
        "etc/edgeimg/device.toml",
        "data",
    ] {
        assert!(
            files
                .lines()
                .any(|l| l == format!("squashfs-root/{wanted}")),
            "root lacks /{wanted}"
        );
    }

    let data = dir.path().join("data.ext4");
    extract_partition(image, &table, 4, &data);
    run_tool("fsck.ext4", &["-fn", data.to_str().unwrap()]);
    let label = run_tool("e2label", &[data.to_str().unwrap()]);
    assert_eq!(label.trim(), "edge-data");

    // The block map covers every partition's data, so flashing it yields a working card.
    let bmap = std::fs::read_to_string(image.with_extension("img.bmap")).unwrap();
    assert!(bmap.contains("<MappedBlocksCount>"), "{bmap}");

    pi_drivers::check(image.parent().unwrap(), &boot, &files, &mirror().dir);
}

#[test]
fn qemu_x86_64_rootfs_has_alpine_base_kernel_and_db() {
    let tar = build_recipe("qemu-x86_64.toml", "virt");
    // Alpine's own apk, run from the real Alpine root through its musl loader, reads the
    // database we wrote and lists what we installed.
    let image = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("xf")
        .arg(tar.path().join("edge-x86.rootfs.tar"))
        .arg("-C")
        .arg(image.path())
        .status()
        .unwrap();
    assert!(status.success());
    let cache = edgeimg_mirror::cache::cache_root().unwrap();
    let host = edgeimg_mirror::mirror::host_root(&cache).unwrap();
    let out = Command::new(host.dir.join(host.arch.musl_loader()))
        .arg("--library-path")
        .arg(format!(
            "{}:{}",
            host.dir.join("lib").display(),
            host.dir.join("usr/lib").display()
        ))
        .arg(host.dir.join("sbin/apk"))
        .arg("--root")
        .arg(image.path())
        .args(["--no-network", "--no-cache", "info", "-v"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "apk info failed: {}", stderr(&out));
    for pkg in ["alpine-baselayout-3.", "linux-virt-6.18"] {
        assert!(
            listed.lines().any(|l| l.starts_with(pkg)),
            "apk does not list {pkg}:\n{listed}"
        );
    }
}

#[test]
fn qemu_aarch64_rootfs_has_alpine_base_kernel_and_db() {
    build_recipe("qemu-aarch64.toml", "virt");
}

/// `runtime.debug_shell = true` is the one way busybox (the console's shell) and the musl
/// loader it runs on enter an image; the manifest then lists them as installed, not left out.
#[test]
fn a_debug_shell_image_carries_busybox_and_its_c_library() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        recipe_text("qemu-aarch64.toml").replace("# debug_shell = true", "debug_shell = true");
    assert!(
        text.contains("\ndebug_shell = true"),
        "the recipe's debug_shell line moved"
    );
    let recipe = dir.path().join("debug-shell.toml");
    std::fs::write(&recipe, text).unwrap();
    let out = dir.path().join("out");
    let result = build_with_mirror(&recipe, &out, &shared_cache(), &mirror().dir);
    assert!(result.status.success(), "{}", stderr(&result));
    let tar_path = out.join("edge-arm64.rootfs.tar");
    let entries = tar_entries(&tar_path);
    for wanted in ["bin/busybox", "bin/sh", "lib/ld-musl-aarch64.so.1"] {
        assert!(entries.contains_key(wanted), "{wanted} missing");
    }
    let installed = String::from_utf8(tar_file(&tar_path, "lib/apk/db/installed")).unwrap();
    for pkg in ["busybox", "musl"] {
        assert!(apk_db_lists(&installed, pkg), "{pkg} not in the apk db");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let left_out = manifest["left_out"].to_string();
    assert!(!left_out.contains("alpine-baselayout"), "{left_out}");
}

/// The OCR recipe: three models taken from one pinned PyPI wheel (fetched over https), each
/// in the image as the manifest says, and named in the SBOM with the wheel's URL.
#[test]
fn ocr_recipe_holds_its_three_models_from_the_pinned_wheel() {
    let out = build_recipe("ocr-aarch64.toml", "virt");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let models = manifest["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["det", "cls", "rec"]);
    let wheel = "https://files.pythonhosted.org/packages/ba/12/1e5497183bdbe782dbb91bad1d0d2297dba4d2831b2652657f7517bfc6df/rapidocr_onnxruntime-1.4.4-py3-none-any.whl";
    let tar = out.path().join("ocr-arm64.rootfs.tar");
    let listed = sbom(out.path(), &manifest)["packages"].clone();
    for m in models {
        assert_eq!(m["source"], wheel);
        let member = m["member"].as_str().unwrap();
        assert!(member.starts_with("rapidocr_onnxruntime/models/") && member.ends_with(".onnx"));
        let in_image = tar_file(
            &tar,
            m["path_in_image"].as_str().unwrap().trim_start_matches('/'),
        );
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&in_image)),
            m["sha256"].as_str().unwrap()
        );
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == m["name"])
            .unwrap_or_else(|| panic!("{} is not in the SBOM", m["name"]));
        assert_eq!(entry["downloadLocation"], wheel);
    }
}

/// A recipe in a temp folder that points at the project's model, with `extra` appended to
/// its [alpine] section.
fn recipe_with(dir: &Path, alpine_extra: &str) -> std::path::PathBuf {
    tiny_mlp_recipe(
        dir,
        "t",
        "x = [1, 16]",
        &format!("[alpine]\n{alpine_extra}"),
    )
}

fn assert_fails_with(out: &std::process::Output, needles: &[&str]) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}:\n{err}");
    }
}

#[test]
fn package_not_in_the_index_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = recipe_with(dir.path(), "packages = [\"no-such-package\"]");
    let out = build_with_mirror(
        &recipe,
        &dir.path().join("out"),
        &shared_cache(),
        &mirror().dir,
    );
    assert_fails_with(&out, &["no-such-package"]);
}

#[test]
fn unsatisfiable_version_constraint_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = recipe_with(dir.path(), "packages = [\"busybox>=99\"]");
    let out = build_with_mirror(
        &recipe,
        &dir.path().join("out"),
        &shared_cache(),
        &mirror().dir,
    );
    assert_fails_with(&out, &["busybox", ">=99"]);
}

#[test]
fn mirror_key_that_is_not_trusted_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = recipe_with(dir.path(), "");
    let out = edgeimg(
        &[
            "build",
            recipe.to_str().unwrap(),
            "--out",
            dir.path().join("out").to_str().unwrap(),
            "--mirror",
            mirror().dir.to_str().unwrap(),
        ],
        &[("EDGEIMG_CACHE", &dir.path().join("cache"))],
    );
    let key_name = mirror()
        .key
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_fails_with(&out, &[&key_name]);
    assert!(!dir.path().join("out/manifest.json").exists());
}

/// Copy the x86_64 main repository of the mirror so a test can damage it.
fn copy_of_mirror(dest: &Path) -> std::path::PathBuf {
    let status = Command::new("cp")
        .arg("-a")
        .arg(&mirror().dir)
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success());
    dest.to_path_buf()
}

fn flip_byte(path: &Path, offset_from_end: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() - offset_from_end;
    bytes[i] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn tampered_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mirror_copy = copy_of_mirror(&dir.path().join("mirror"));
    flip_byte(&mirror_copy.join("v3.23/main/x86_64/APKINDEX.tar.gz"), 100);
    let recipe = recipe_with(dir.path(), "");
    let out = build_with_mirror(
        &recipe,
        &dir.path().join("out"),
        &dir.path().join("cache"),
        &mirror_copy,
    );
    assert_fails_with(&out, &["APKINDEX"]);
}

#[test]
fn corrupt_cached_package_is_refused_and_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let recipe = recipe_with(dir.path(), "");
    let out = build_with_mirror(&recipe, &dir.path().join("out"), &cache, &mirror().dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let apks: Vec<_> = walk(&cache)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "apk"))
        .collect();
    assert!(!apks.is_empty(), "no .apk in the cache");
    // Damage the largest package (the kernel) past its control stream.
    let victim = apks
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    flip_byte(&victim, 5000);
    let out = build_with_mirror(&recipe, &dir.path().join("out2"), &cache, &mirror().dir);
    assert_fails_with(&out, &[]);
    let err = stderr(&out);
    assert!(
        err.contains(&victim.file_name().unwrap().to_string_lossy().to_string())
            || err.contains("apk"),
        "{err}"
    );
    assert!(
        !victim.exists(),
        "the corrupt package is still in the cache"
    );
    assert!(!dir.path().join("out2/manifest.json").exists());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn recipe_with_unknown_key_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[image]\nname = \"x\"\nboard = \"rpi4\"\n\n[runtime]\nengin = \"tract\"\n",
    )
    .unwrap();
    let out = edgeimg(&["build", path.to_str().unwrap()], &[]);
    assert_fails_with(
        &out,
        &["bad.toml:6:1", "runtime.engin", "unknown key", "engine"],
    );
}

#[test]
fn recipe_with_bad_board_lists_the_boards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[image]\nname = \"x\"\nboard = \"rpi5\"\n").unwrap();
    let out = edgeimg(&["build", path.to_str().unwrap()], &[]);
    assert_fails_with(
        &out,
        &[
            "bad.toml:3:9",
            "image.board",
            "rpi5",
            "rpi4",
            "qemu-aarch64",
        ],
    );
}
