//! Reproducible builds. Every output of `recipes/pi.toml` (SD-card image with its FAT boot,
//! squashfs root and ext4 data partitions, `.bmap`, rootfs tar), of `recipes/qemu-aarch64.toml`
//! (kernel, initramfs, rootfs tar) and of `recipes/qemu-x86_64.toml` with every output kind
//! (rootfs tar, kernel + initramfs, disk image + `.bmap`, qcow2), plus each build's model,
//! manifest, SBOM and `edgeimg lock`'s lock file, is byte-identical when the recipes and their
//! model are copied to two different checkout folders and built there with different umasks,
//! time zones and locales; and no manifest, SBOM or lock names a folder of the build host.
//!
//! What the two builds share: this edgeimg, the device binaries it builds from this workspace
//! (`edge-init`, `edge-runtime`, the same files for both), the offline mirror and the package
//! cache. Two copies of the whole workspace would also rebuild the device binaries, minutes
//! per arch; that the binaries themselves build reproducibly is not shown here.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{mirror, project_root, shared_cache, stderr};

/// The output kinds every QEMU board can write, for the recipe that shows them all.
const EVERY_OUTPUT: &str = "outputs = [\"rootfs-tar\", \"initramfs\", \"disk\", \"qcow2\"]";

/// How one checkout's build differs from the other's, besides its folder.
struct Surroundings {
    umask: &'static str,
    tz: &'static str,
    locale: &'static str,
}

const FIRST: Surroundings = Surroundings {
    umask: "022",
    tz: "UTC",
    locale: "C",
};
const SECOND: Surroundings = Surroundings {
    umask: "077",
    tz: "Asia/Tokyo",
    locale: "C.UTF-8",
};

/// A checkout holding `recipes/RECIPE`, the model it names (`tests/models/tiny-mlp.onnx`) and
/// the secrets it names, with `image_extra` added to the recipe's `[image]` section; returns
/// the recipe's path.
fn checkout(root: &Path, recipe: &str, image_extra: &str) -> PathBuf {
    let models = root.join("tests/models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::copy(
        project_root().join("tests/models/tiny-mlp.onnx"),
        models.join("tiny-mlp.onnx"),
    )
    .unwrap();
    let text = std::fs::read_to_string(project_root().join("recipes").join(recipe)).unwrap();
    let text = text.replacen("[image]\n", &format!("[image]\n{image_extra}\n"), 1);
    std::fs::create_dir_all(root.join("recipes")).unwrap();
    // The secrets the QEMU recipes name (the same bytes in both checkouts, as a team's would
    // be): the API token and the models' public key go into the image.
    let secrets = root.join("recipes/secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for file in ["api-token", "models.pub"] {
        std::fs::copy(common::recipe_secrets().join(file), secrets.join(file)).unwrap();
    }
    let path = root.join("recipes").join(recipe);
    std::fs::write(&path, text).unwrap();
    path
}

/// `edgeimg ARGS` from `cwd`, against the offline mirror, in `how`'s surroundings.
fn edgeimg(cwd: &Path, how: &Surroundings, epoch: Option<&str>, args: &[&str]) {
    let m = mirror();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {} && exec \"$0\" \"$@\"", how.umask))
        .arg(env!("CARGO_BIN_EXE_edgeimg"))
        .args(args)
        .args(["--mirror", m.dir.to_str().unwrap()])
        .args(["--trust-key", m.key.to_str().unwrap()])
        .current_dir(cwd)
        .env("EDGEIMG_CACHE", shared_cache())
        .env("TZ", how.tz)
        .env("LC_ALL", how.locale)
        .env_remove("EDGEIMG_ALPINE_MIRROR")
        .env_remove("EDGEIMG_ALPINE_KEYS");
    match epoch {
        Some(epoch) => cmd.env("SOURCE_DATE_EPOCH", epoch),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "edgeimg {args:?}: {}", stderr(&out));
}

/// Locks and builds `recipe` in a checkout at `root` (run from inside it, as a user would);
/// returns every file written, by name: the build's outputs and the lock (not the secrets
/// stamp, this machine's record of when the secret files were written, kept for staleness).
fn lock_and_build(
    root: &Path,
    recipe: &str,
    image_extra: &str,
    how: &Surroundings,
    epoch: Option<&str>,
) -> BTreeMap<String, Vec<u8>> {
    let path = checkout(root, recipe, image_extra);
    let relative = format!("recipes/{recipe}");
    edgeimg(root, how, epoch, &["lock", &relative]);
    edgeimg(root, how, epoch, &["build", &relative, "--out", "out"]);
    let lock = PathBuf::from(format!("{}.lock", path.display()));
    std::fs::read_dir(root.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with(edgeimg::outputs::freshness::SECRETS_STAMP))
        .chain([lock])
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Builds `recipe` in two checkouts and holds them to the same bytes and no host paths.
fn builds_identically_in_two_checkouts(
    recipe: &str,
    image_extra: &str,
    epoch: Option<&str>,
    expected: &[&str],
) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let deeper = b.path().join("some/deeper/checkout");
    let first = lock_and_build(a.path(), recipe, image_extra, &FIRST, epoch);
    let second = lock_and_build(&deeper, recipe, image_extra, &SECOND, epoch);

    let names: Vec<&str> = first.keys().map(String::as_str).collect();
    for want in expected {
        assert!(
            names.iter().any(|n| n.ends_with(want)),
            "{recipe}: no *{want} among {names:?}"
        );
    }
    for (name, bytes) in &first {
        let other = second
            .get(name)
            .unwrap_or_else(|| panic!("{recipe}: the second build wrote no {name}"));
        assert!(
            bytes == other,
            "{recipe}: {name} differs between the two checkouts"
        );
    }
    assert_eq!(first.len(), second.len(), "{recipe}: {names:?}");

    // The records a user keeps or publishes name nothing of this machine.
    let host_paths = [
        a.path().to_path_buf(),
        deeper.clone(),
        mirror().dir.clone(),
        shared_cache(),
        project_root(),
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default(),
    ];
    for (name, bytes) in &first {
        if !(name == "manifest.json" || name.ends_with(".spdx.json") || name.ends_with(".lock")) {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        for path in &host_paths {
            let path = path.to_string_lossy();
            assert!(
                !text.contains(path.as_ref()),
                "{recipe}: {name} names the host folder {path}"
            );
        }
    }
}

#[test]
fn pi_sd_card_and_every_file_beside_it_are_byte_identical_from_two_checkouts() {
    // No SOURCE_DATE_EPOCH: the build's own default date, as most users build.
    builds_identically_in_two_checkouts(
        "pi.toml",
        "",
        None,
        &[
            ".img",
            ".img.bmap",
            ".rootfs.tar",
            ".spdx.json",
            "manifest.json",
            ".lock",
        ],
    );
}

#[test]
fn qemu_x86_64_every_output_kind_is_byte_identical_from_two_checkouts() {
    builds_identically_in_two_checkouts(
        "qemu-x86_64.toml",
        EVERY_OUTPUT,
        Some("1700000000"),
        &[
            ".img",
            ".img.bmap",
            ".qcow2",
            ".kernel",
            ".initramfs.cpio.zst",
            ".rootfs.tar",
            ".spdx.json",
            "manifest.json",
            ".lock",
        ],
    );
}

#[test]
fn qemu_aarch64_outputs_are_byte_identical_from_two_checkouts() {
    builds_identically_in_two_checkouts(
        "qemu-aarch64.toml",
        "",
        None,
        &[
            ".kernel",
            ".initramfs.cpio.zst",
            ".rootfs.tar",
            ".spdx.json",
            "manifest.json",
            ".lock",
        ],
    );
}
