//! Shared by the builder's end-to-end tests: running the real CLI against the offline mirror
//! (from `edgeimg-test-support`, with the project's other shared test pieces).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub use edgeimg_test_support::mirror::mirror;

pub use edgeimg_test_support::project_root;

/// The secrets the example recipes name and git does not hold (`recipes/secrets/`): the API
/// token, the model and the system update signing keys, made once, as the recipes' comments tell a user to.
pub fn recipe_secrets() -> PathBuf {
    static SECRETS: OnceLock<PathBuf> = OnceLock::new();
    SECRETS
        .get_or_init(|| {
            let dir = project_root().join("recipes/secrets");
            std::fs::create_dir_all(&dir).unwrap();
            // nextest runs every test in a process of its own: one makes them, the rest wait.
            let lock = std::fs::File::create(dir.join(".lock")).unwrap();
            lock.lock().unwrap();
            let token = dir.join("api-token");
            if !token.exists() {
                let scratch = dir.join(format!(".api-token.{}", std::process::id()));
                std::fs::write(
                    &scratch,
                    format!(
                        "test-token-{:x}\n",
                        (std::process::id() as u64).wrapping_mul(0x9e3779b97f4a7c15)
                    ),
                )
                .unwrap();
                std::fs::rename(&scratch, &token).unwrap();
            }
            for keys in ["models", "system"] {
                if dir.join(format!("{keys}.pub")).exists() {
                    continue;
                }
                let out = Command::new(env!("CARGO_BIN_EXE_edgeimg"))
                    .args(["keygen", dir.join(keys).to_str().unwrap()])
                    .output()
                    .expect("run edgeimg keygen");
                assert!(
                    out.status.success(),
                    "edgeimg keygen: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            dir
        })
        .clone()
}

/// The text of `recipes/NAME` for a copy elsewhere: its `tests/` and secrets paths made absolute.
pub fn recipe_text(name: &str) -> String {
    let root = project_root();
    recipe_secrets();
    std::fs::read_to_string(root.join("recipes").join(name))
        .unwrap()
        .replace("../tests/", &format!("{}/tests/", root.display()))
        .replace(
            "\"secrets/",
            &format!("\"{}/recipes/secrets/", root.display()),
        )
}

/// `edgeimg ARGS` with a clean environment: no mirror, keys or cache from the caller unless
/// the test sets them. The example recipes' secrets exist by then.
pub fn edgeimg(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    recipe_secrets();
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
    recipe_secrets();
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

/// `edgeimg COMMAND RECIPE EXTRA...` against the offline mirror, with the given cache.
pub fn with_mirror(command: &str, recipe: &Path, extra: &[&str], cache: &Path) -> Output {
    let m = mirror();
    let mut args = vec![
        command,
        recipe.to_str().unwrap(),
        "--mirror",
        m.dir.to_str().unwrap(),
        "--trust-key",
        m.key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    edgeimg(&args, &[("EDGEIMG_CACHE", cache)])
}

/// The SPDX reference validator (PyPI's spdx-tools, `pyspdxtools`) accepts the SBOM `file`.
pub fn assert_valid_spdx(file: &Path) {
    // As a module of the venv's python: the venv's console scripts name in their first line
    // the staging folder it was made in, gone once it was renamed into place.
    let python = edgeimg_test_support::wheels::python();
    let checked = Command::new(&python)
        .args(["-m", "spdx_tools.spdx.clitools.pyspdxtools", "-i"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (pyspdxtools): {e}", python.display()));
    assert!(
        checked.status.success(),
        "pyspdxtools rejects {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&checked.stdout),
        stderr(&checked)
    );
}

/// `DIR/NAME.toml`: a qemu-x86_64 recipe serving the project's tiny-mlp model with input shape
/// `model_inputs` (e.g. `x = [1, 16]`), and `extra` (more sections) after it.
pub fn tiny_mlp_recipe(dir: &Path, name: &str, model_inputs: &str, extra: &str) -> PathBuf {
    let model = project_root().join("tests/models/tiny-mlp.onnx");
    let text = format!(
        "[image]\nname = \"{name}\"\nboard = \"qemu-x86_64\"\n[model]\npath = {:?}\ninputs = {{ {model_inputs} }}\n{extra}\n",
        model.display().to_string()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
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
