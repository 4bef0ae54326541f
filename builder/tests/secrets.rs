//! The API's secrets through `edgeimg build` and `edgeimg lock`: in the image, readable by
//! the server's account alone; nowhere else (device config, manifest, SBOM, lock, output).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{edgeimg, mirror, project_root, shared_cache, stderr};

const TOKEN: &str = "tok-3f9c2e7a-never-anywhere-else";
/// Stand-ins for PEM files: the build copies them, it does not parse them.
const CERT: &str = "-----BEGIN CERTIFICATE-----\npublic-cert-bytes\n-----END CERTIFICATE-----\n";
const KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nkey-7d1b0c4e-never-anywhere-else\n-----END PRIVATE KEY-----\n";

/// path -> (mode, uid, gid, contents) of every entry of a tar archive.
fn tar_files(path: &Path) -> BTreeMap<String, (u32, u64, u64, Vec<u8>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let name = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (
                name,
                (
                    h.mode().unwrap() & 0o7777,
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    data,
                ),
            )
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_are_the_servers_alone_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(secrets.join("cert.pem"), CERT).unwrap();
    std::fs::write(secrets.join("key.pem"), KEY).unwrap();
    let model = project_root().join("tests/models/tiny-mlp.onnx");
    let recipe = dir.path().join("edge-secret.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"edge-secret\"\nboard = \"qemu-x86_64\"\noutputs = [\"rootfs-tar\"]\n\
             [model]\npath = {:?}\ninputs = {{ x = [1, 16] }}\n\
             [runtime]\nbearer_token_file = \"secrets/token\"\nstart_plan = \"optimised\"\n\
             tls = {{ cert = \"secrets/cert.pem\", key = \"secrets/key.pem\" }}\n",
            model.display().to_string()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let m = mirror();
    let cache = shared_cache();
    let mirror_args = [
        "--mirror",
        m.dir.to_str().unwrap(),
        "--trust-key",
        m.key.to_str().unwrap(),
    ];
    let build = edgeimg(
        &[
            &[
                "build",
                recipe.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ][..],
            &mirror_args,
        ]
        .concat(),
        &[("EDGEIMG_CACHE", &cache)],
    );
    assert!(build.status.success(), "{}", stderr(&build));
    let lock = edgeimg(
        &[&["lock", recipe.to_str().unwrap()][..], &mirror_args].concat(),
        &[("EDGEIMG_CACHE", &cache)],
    );
    assert!(lock.status.success(), "{}", stderr(&lock));

    let files = tar_files(&out.join("edge-secret.rootfs.tar"));
    let server = (1000, 1000);
    let entry = |name: &str| {
        files
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the image"))
    };
    let (mode, uid, gid, _) = entry("etc/edgeimg/secrets");
    assert_eq!((*mode, (*uid, *gid)), (0o500, server), "the secrets folder");
    let (mode, uid, gid, token) = entry("etc/edgeimg/secrets/bearer-token");
    assert_eq!((*mode, (*uid, *gid)), (0o400, server), "the token file");
    assert_eq!(token, format!("{TOKEN}\n").as_bytes());
    let (mode, uid, gid, key) = entry("etc/edgeimg/secrets/tls-key.pem");
    assert_eq!((*mode, (*uid, *gid)), (0o400, server), "the TLS key");
    assert_eq!(key, KEY.as_bytes());
    let (mode, uid, _, cert) = entry("etc/edgeimg/tls-cert.pem");
    assert_eq!((*mode, *uid), (0o444, 0), "the certificate is public");
    assert_eq!(cert, CERT.as_bytes());

    // The world-readable config names the files, never what is in them.
    let (mode, _, _, config) = entry("etc/edgeimg/device.toml");
    assert_eq!(*mode, 0o644);
    let config = String::from_utf8(config.clone()).unwrap();
    assert!(
        config.contains("bearer_token_file = \"/etc/edgeimg/secrets/bearer-token\""),
        "{config}"
    );
    assert!(
        config.contains("key = \"/etc/edgeimg/secrets/tls-key.pem\""),
        "{config}"
    );
    // The recipe's other runtime keys reach the server too.
    assert!(config.contains("start_plan = \"optimised\""), "{config}");
    for (name, (_, _, _, data)) in &files {
        if name != "etc/edgeimg/secrets/bearer-token" && name != "etc/edgeimg/secrets/tls-key.pem" {
            assert!(
                !contains(data, TOKEN) && !contains(data, "key-7d1b0c4e"),
                "{name} holds a secret"
            );
        }
    }
    // Nor does anything else the build wrote or said.
    let lock_file = dir.path().join("edge-secret.toml.lock");
    let mut written: Vec<std::path::PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".rootfs.tar"))
        .collect();
    written.push(lock_file);
    for path in written {
        let data = std::fs::read(&path).unwrap();
        assert!(
            !contains(&data, TOKEN) && !contains(&data, "key-7d1b0c4e"),
            "{} holds a secret",
            path.display()
        );
    }
    for output in [&build, &lock] {
        let said = [&output.stdout[..], &output.stderr[..]].concat();
        assert!(!contains(&said, TOKEN) && !contains(&said, "key-7d1b0c4e"));
    }
}

/// Inline, the token still works but the build warns that it lands in git.
#[test]
fn an_inline_token_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let model = project_root().join("tests/models/tiny-mlp.onnx");
    let recipe = dir.path().join("inline.toml");
    std::fs::write(
        &recipe,
        format!(
            "[image]\nname = \"inline\"\nboard = \"qemu-x86_64\"\noutputs = [\"rootfs-tar\"]\n\
             [model]\npath = {:?}\ninputs = {{ x = [1, 16] }}\n[runtime]\nbearer_token = \"{TOKEN}\"\n",
            model.display().to_string()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let build = common::build_with_mirror(&recipe, &out, &shared_cache(), &mirror().dir);
    assert!(build.status.success(), "{}", stderr(&build));
    assert!(
        stderr(&build)
            .contains("warning: runtime.bearer_token is written in the recipe, so it lands in git"),
        "{}",
        stderr(&build)
    );
    let files = tar_files(&out.join("inline.rootfs.tar"));
    let (mode, uid, _, token) = &files["etc/edgeimg/secrets/bearer-token"];
    assert_eq!((*mode, *uid), (0o400, 1000));
    assert_eq!(token, format!("{TOKEN}\n").as_bytes());
    let config = &files["etc/edgeimg/device.toml"].3;
    assert!(
        !contains(config, TOKEN),
        "the inline token is not copied into device.toml"
    );
}
