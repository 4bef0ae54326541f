//! Shared by the builder's end-to-end tests: the offline mirror and running the real CLI.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub struct Mirror {
    pub dir: PathBuf,
    pub key: PathBuf,
}

/// The offline Alpine mirror: from `EDGEIMG_ALPINE_MIRROR`/`EDGEIMG_ALPINE_KEYS` when the test
/// script exported them, else built (or reused) by `tests/mirror.sh`.
pub fn mirror() -> &'static Mirror {
    static MIRROR: OnceLock<Mirror> = OnceLock::new();
    MIRROR.get_or_init(|| {
        if let (Ok(dir), Ok(key)) = (
            std::env::var("EDGEIMG_ALPINE_MIRROR"),
            std::env::var("EDGEIMG_ALPINE_KEYS"),
        ) {
            return Mirror {
                dir: dir.into(),
                key: key.split(':').next().unwrap().into(),
            };
        }
        let out = Command::new(project_root().join("tests/mirror.sh"))
            .output()
            .expect("run tests/mirror.sh");
        assert!(
            out.status.success(),
            "tests/mirror.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let value = |var: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {var}='")))
                .map(|v| v.trim_end_matches('\'').to_string())
                .unwrap_or_else(|| panic!("tests/mirror.sh did not print {var}"))
        };
        Mirror {
            dir: value("EDGEIMG_ALPINE_MIRROR").into(),
            key: value("EDGEIMG_ALPINE_KEYS").into(),
        }
    })
}

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `edgeimg ARGS` with a clean environment: no mirror, keys or cache from the caller unless
/// the test sets them.
pub fn edgeimg(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeimg"));
    cmd.args(args)
        .env_remove("EDGEIMG_ALPINE_MIRROR")
        .env_remove("EDGEIMG_ALPINE_KEYS")
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run edgeimg")
}

/// `edgeimg build RECIPE` against the offline mirror into `out`, sharing the given cache.
pub fn build_with_mirror(recipe: &Path, out: &Path, cache: &Path, mirror_dir: &Path) -> Output {
    let m = mirror();
    edgeimg(
        &[
            "build",
            recipe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--mirror",
            mirror_dir.to_str().unwrap(),
            "--trust-key",
            m.key.to_str().unwrap(),
        ],
        &[("EDGEIMG_CACHE", cache)],
    )
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A package cache shared by the tests (kept between runs in cargo's target tmp dir), so
/// each package is fetched once; tests that damage a cache make their own.
pub fn shared_cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shared-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
