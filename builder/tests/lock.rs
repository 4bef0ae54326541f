//! `edgeimg lock` and locked builds: a lock pins exactly what was built, and a mirror that
//! no longer serves it, or serves something else under the same name, fails the build clearly.

mod common;

use std::path::{Path, PathBuf};

use common::{recipe_text, shared_cache, stderr, with_mirror};

/// A copy of the x86_64 recipe in its own folder (the lock is written beside it).
fn recipe_copy(dir: &Path) -> PathBuf {
    let text = recipe_text("qemu-x86_64.toml");
    let path = dir.join("device.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(command: &str, recipe: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut extra = extra.to_vec();
    if command == "build" {
        extra.extend(["--out", out.to_str().unwrap()]);
    }
    with_mirror(command, recipe, &extra, &shared_cache())
}

/// (name, version, apk sha256) of each package in a manifest's or lock's package list.
fn package_triples(list: &[serde_json::Value]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
                p["apk_sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn manifest_packages(out: &Path) -> Vec<(String, String, String)> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    package_triples(manifest["packages"].as_array().unwrap())
}

#[test]
fn a_locked_build_installs_exactly_the_lock_and_refuses_drift() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = recipe_copy(dir.path());
    let out = dir.path().join("out");

    let refused = run("build", &recipe, &out, &["--locked"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("device.toml.lock") && stderr(&refused).contains("edgeimg lock"),
        "{}",
        stderr(&refused)
    );

    let locked = run("lock", &recipe, &out, &[]);
    assert!(locked.status.success(), "{}", stderr(&locked));
    let lock_file = dir.path().join("device.toml.lock");
    let lock_text = std::fs::read_to_string(&lock_file).unwrap();
    let lock: toml::Value = toml::from_str(&lock_text).unwrap();
    let lock_json = serde_json::to_value(&lock).unwrap();
    let locked_packages = package_triples(lock_json["package"].as_array().unwrap());
    assert!(
        locked_packages.iter().any(|p| p.0 == "linux-virt"),
        "{lock_text}"
    );
    assert_eq!(lock["kernel"]["name"].as_str(), Some("linux-virt"));
    // Every model, by name, with the sha256 of the file it is made from.
    let models = lock["model"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{lock_text}");
    assert_eq!(models[0]["name"].as_str(), Some("tiny-mlp"));
    assert_eq!(models[0]["sha256"].as_str().map(str::len), Some(64));

    let built = run("build", &recipe, &out, &["--locked"]);
    assert!(built.status.success(), "{}", stderr(&built));
    let mut installed = manifest_packages(&out);
    let mut expected = locked_packages.clone();
    installed.sort();
    expected.sort();
    assert_eq!(
        installed, expected,
        "the build must install exactly the lock"
    );

    // The mirror no longer has the locked version.
    let base = locked_packages
        .iter()
        .find(|p| p.0 == "alpine-baselayout")
        .unwrap();
    let gone = lock_text.replace(
        &format!("name = \"alpine-baselayout\"\nversion = \"{}\"", base.1),
        "name = \"alpine-baselayout\"\nversion = \"9.9.9-r0\"",
    );
    assert_ne!(
        gone, lock_text,
        "the lock lists alpine-baselayout as name then version"
    );
    std::fs::write(&lock_file, &gone).unwrap();
    let failed = run("build", &recipe, &out, &[]);
    assert!(!failed.status.success());
    let err = stderr(&failed);
    assert!(
        err.contains("device.toml.lock")
            && err.contains("alpine-baselayout")
            && err.contains("edgeimg lock"),
        "{err}"
    );

    // Same version, different bytes: a replaced package is refused.
    let replaced = lock_text.replace(&base.2, &"0".repeat(64));
    std::fs::write(&lock_file, &replaced).unwrap();
    let failed = run("build", &recipe, &out, &[]);
    assert!(!failed.status.success());
    let err = stderr(&failed);
    assert!(err.contains("is not the locked alpine-baselayout"), "{err}");

    // The recipe serves with the real ONNX Runtime: its library and private glibc are locked
    // too, and a different library on this machine is refused.
    let libraries = lock_json["engine_library"].as_array().unwrap();
    let ort = libraries
        .iter()
        .find(|l| l["package"] == "onnxruntime")
        .unwrap_or_else(|| panic!("no libonnxruntime in the lock:\n{lock_text}"));
    assert!(
        libraries.iter().any(|l| l["file"] == "libc.so.6"),
        "{lock_text}"
    );
    let ort_sha = ort["sha256"].as_str().unwrap();
    std::fs::write(&lock_file, lock_text.replace(ort_sha, &"2".repeat(64))).unwrap();
    let failed = run("build", &recipe, &out, &[]);
    assert!(!failed.status.success());
    let err = stderr(&failed);
    assert!(
        err.contains("engine's libraries differ") && err.contains("libonnxruntime.so.1.31.1"),
        "{err}"
    );

    // The lock was made for another model.
    let model_sha = models[0]["sha256"].as_str().unwrap();
    std::fs::write(&lock_file, lock_text.replace(model_sha, &"1".repeat(64))).unwrap();
    let failed = run("build", &recipe, &out, &[]);
    assert!(!failed.status.success());
    assert!(
        stderr(&failed).contains("the models differ"),
        "{}",
        stderr(&failed)
    );
}
