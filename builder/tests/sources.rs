//! What a recipe takes from beyond Alpine's branch repositories, end to end through
//! `edgeimg build` and `edgeimg lock`: a third-party repository at its own url with its own
//! key, and several models, one downloaded by url + sha256 as a member of a wheel.

mod common;
#[path = "packages/repo.rs"]
#[allow(dead_code)] // the packages tests' repository builder; this file needs a part of it
mod repo;

use std::io::{Read, Write};
use std::path::Path;

use common::{assert_valid_spdx, project_root, shared_cache, stderr, with_mirror};
use repo::{SigningKey, TarBuilder, TestPackage};
use sha2::{Digest, Sha256};

const VENDOR_KEY: &str = "vendor@example.org-00000002.rsa.pub";
const VENDOR_DEVICE_URL: &str = "https://vendor.example.org/alpine/v3.23/main";
const MODEL_MEMBER: &str = "vendor_models/models/tiny-mlp.onnx";
const WHEEL: &str = "vendor_models-1.0-py3-none-any.whl";

/// The vendor's key, made once per process: the tests here run in parallel, and a second
/// `generate` rewrites the public key file while the first test copies it.
fn vendor_key() -> &'static SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(VENDOR_KEY))
}

/// `<dir>/vendor/v3.23/main/x86_64/`: one package, `vendor-hello`, signed by the vendor's key.
fn vendor_repository(dir: &Path, key: &SigningKey) {
    let mut data = TarBuilder::new();
    data.dir("usr", 0o755);
    data.dir("usr/share", 0o755);
    data.dir("usr/share/vendor", 0o755);
    data.file("usr/share/vendor/hello", 0o644, b"hello from the vendor\n");
    let package = TestPackage::new("vendor-hello", "1.0-r0", "", data.finish());
    repo::write_repo(&dir.join("vendor"), &[package], key);
}

/// A wheel (a zip) holding the project's tiny-mlp model; its sha256.
fn model_wheel(path: &Path) -> String {
    let model = std::fs::read(project_root().join("tests/models/tiny-mlp.onnx")).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    zip.start_file(MODEL_MEMBER, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(&model).unwrap();
    zip.finish().unwrap();
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn recipe(dir: &Path, wheel_sha256: &str) -> std::path::PathBuf {
    let model = project_root().join("tests/models/tiny-mlp.onnx");
    let text = format!(
        r#"[image]
name = "sources"
board = "qemu-x86_64"
outputs = ["rootfs-tar"]

[alpine]
packages = ["vendor-hello"]

[[alpine.repository]]
url = "vendor/v3.23/main"
key = "keys/{VENDOR_KEY}"
device_url = "{VENDOR_DEVICE_URL}"

[[model]]
path = {model:?}
inputs = {{ x = [1, 16] }}

[[model]]
name = "downloaded"
url = "{WHEEL}"
sha256 = "{wheel_sha256}"
member = "{MODEL_MEMBER}"
inputs = {{ x = [1, 16] }}
"#
    );
    let path = dir.join("sources.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn tar_file(tar_path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar_path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            == name
        {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            return Some(data);
        }
    }
    None
}

#[test]
fn a_third_party_repository_and_a_downloaded_model_reach_the_image_and_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let vendor = vendor_key();
    vendor_repository(dir.path(), vendor);
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    std::fs::copy(&vendor.pub_path, dir.path().join("keys").join(VENDOR_KEY)).unwrap();
    let wheel = dir.path().join(WHEEL);
    let wheel_sha256 = model_wheel(&wheel);
    let recipe = recipe(dir.path(), &wheel_sha256);
    // Models are fetched into this cache; packages come from the shared one's copy of the
    // mirror as well, so the build is as a user's first one.
    let cache = tempfile::tempdir().unwrap();

    let out = dir.path().join("out");
    let built = with_mirror(
        "build",
        &recipe,
        &["--out", out.to_str().unwrap()],
        cache.path(),
    );
    assert!(built.status.success(), "{}", stderr(&built));

    // The device is told public URLs only: Alpine's CDN for the branch repository (the build
    // read a host folder), the vendor's device_url for the vendor's.
    let tar_path = out.join("sources.rootfs.tar");
    let repositories = String::from_utf8(tar_file(&tar_path, "etc/apk/repositories").unwrap());
    assert_eq!(
        repositories.unwrap(),
        format!("https://dl-cdn.alpinelinux.org/alpine/v3.23/main\n{VENDOR_DEVICE_URL}\n")
    );
    assert_eq!(
        tar_file(&tar_path, "usr/share/vendor/hello").as_deref(),
        Some(&b"hello from the vendor\n"[..])
    );
    assert!(tar_file(&tar_path, &format!("etc/apk/keys/{VENDOR_KEY}")).is_some());

    // Both models are in the image, and the manifest records each and where it came from.
    let manifest_text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest_text).unwrap();
    let models = manifest["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["tiny-mlp", "downloaded"]);
    let downloaded = &models[1];
    assert_eq!(downloaded["source"], WHEEL);
    assert_eq!(downloaded["member"], MODEL_MEMBER);
    assert_eq!(downloaded["download_sha256"], wheel_sha256.as_str());
    // The same bytes either way, so the same model.
    assert_eq!(models[0]["source_sha256"], downloaded["source_sha256"]);
    // The server's config names both, each at its file.
    let config: toml::Value = toml::from_str(
        &String::from_utf8(tar_file(&tar_path, "etc/edgeimg/device.toml").unwrap()).unwrap(),
    )
    .unwrap();
    let served: Vec<(&str, &str)> = config["runtime"]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["path"].as_str().unwrap()))
        .collect();
    let recorded: Vec<(&str, &str)> = models
        .iter()
        .map(|m| {
            let (name, path) = (&m["name"], &m["path_in_image"]);
            (name.as_str().unwrap(), path.as_str().unwrap())
        })
        .collect();
    assert_eq!(served, recorded);
    for model in models {
        let in_image = model["path_in_image"].as_str().unwrap();
        let data = tar_file(&tar_path, in_image.trim_start_matches('/')).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&data)), model["sha256"]);
    }
    let package = manifest["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vendor-hello")
        .expect("vendor-hello in the manifest");
    assert_eq!(package["device_repository"], VENDOR_DEVICE_URL);
    // No host folder in what is published beside the image.
    let host = dir.path().display().to_string();
    assert!(!manifest_text.contains(&host), "{manifest_text}");

    // The SPDX reference validator accepts the SBOM, which lists both models.
    let sbom_path = out.join("sources.spdx.json");
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sbom_path).unwrap()).unwrap();
    for name in ["tiny-mlp", "downloaded", "vendor-hello"] {
        assert!(
            sbom["packages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == name),
            "SBOM lacks {name}"
        );
    }
    assert_valid_spdx(&sbom_path);

    // The download is cached: with the wheel gone, the lock still reads the model, and
    // records every model by name.
    std::fs::remove_file(&wheel).unwrap();
    let locked = with_mirror("lock", &recipe, &[], cache.path());
    assert!(locked.status.success(), "{}", stderr(&locked));
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.path().join("sources.toml.lock")).unwrap())
            .unwrap();
    let locked_models: Vec<(&str, &str)> = lock["model"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["sha256"].as_str().unwrap()))
        .collect();
    assert_eq!(
        locked_models.iter().map(|m| m.0).collect::<Vec<_>>(),
        ["tiny-mlp", "downloaded"]
    );
    assert_eq!(locked_models[0].1, locked_models[1].1);
}

/// A key of the right name that did not sign the repository is named, with the keys tried.
#[test]
fn a_third_party_key_that_did_not_sign_the_repository_is_refused_plainly() {
    let dir = tempfile::tempdir().unwrap();
    vendor_repository(dir.path(), vendor_key());
    // Another key, under the name the repository's signature gives.
    let impostor = SigningKey::generate("impostor@example.org-00000003.rsa.pub");
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    let trusted = dir.path().join("keys").join(VENDOR_KEY);
    std::fs::copy(&impostor.pub_path, &trusted).unwrap();
    let wheel_sha256 = model_wheel(&dir.path().join(WHEEL));
    let recipe = recipe(dir.path(), &wheel_sha256);

    let out = dir.path().join("out");
    let refused = with_mirror(
        "build",
        &recipe,
        &["--out", out.to_str().unwrap()],
        &shared_cache(),
    );
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains(&format!(
            "is signed by key \"{VENDOR_KEY}\", which is not trusted; the keys tried ({VENDOR_KEY} from {}) did not verify it",
            trusted.display()
        )),
        "{err}"
    );
}
