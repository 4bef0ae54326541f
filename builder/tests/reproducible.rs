//! Reproducible builds: the same recipe built in different folders, with different umasks,
//! time zones and locales, gives byte-identical outputs.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{mirror, project_root, shared_cache, stderr};

/// Build recipes/qemu-x86_64.toml from `cwd` into `out` under the given umask/TZ/locale.
fn build(cwd: &Path, out: &Path, umask: &str, tz: &str, locale: &str) -> BTreeMap<String, String> {
    let m = mirror();
    let recipe = project_root().join("recipes/qemu-x86_64.toml");
    let result = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_edgeimg"))
        .args([
            "build",
            recipe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--mirror", m.dir.to_str().unwrap()])
        .args(["--trust-key", m.key.to_str().unwrap()])
        .current_dir(cwd)
        .env("EDGEIMG_CACHE", shared_cache())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("TZ", tz)
        .env("LC_ALL", locale)
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", stderr(&result));
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data)),
            )
        })
        .collect()
}

#[test]
fn two_builds_in_different_folders_umasks_and_time_zones_are_byte_identical() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let deeper = b.path().join("some/deeper/folder");
    std::fs::create_dir_all(&deeper).unwrap();
    let first = build(a.path(), &a.path().join("out"), "022", "UTC", "C");
    let second = build(
        &deeper,
        &deeper.join("images"),
        "077",
        "Asia/Tokyo",
        "C.UTF-8",
    );
    assert!(first.len() >= 5, "expected every output: {first:?}");
    assert!(first.contains_key("manifest.json") && first.contains_key("edge-x86.spdx.json"));
    assert_eq!(first, second, "outputs differ between the two builds");
}
