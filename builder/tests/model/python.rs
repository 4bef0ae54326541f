//! The real Python `onnx` + `onnxruntime` the model tests check against, in a venv under
//! ~/.cache/edgeimg that is made on first use, and wheels fetched into the same cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const REQUIREMENTS: [&str; 3] = ["onnxruntime==1.31.1", "onnx==1.23.2", "numpy==2.4.6"];
const IMPORT_CHECK: &str = "import numpy, onnx, onnxruntime; \
    assert onnxruntime.__version__ == '1.31.1', onnxruntime.__version__";

pub fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/edgeimg")
}

fn wheels_dir() -> PathBuf {
    cache_dir().join("wheels")
}

/// The venv's python, with onnx, onnxruntime and numpy installed.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = cache_dir().join("venv");
        if !venv.join("bin/python").exists() {
            create_venv(&venv);
        }
        let python = venv.join("bin/python");
        if !succeeds(Command::new(&python).args(["-c", IMPORT_CHECK])) {
            pip_install(&python);
        }
        python
    })
}

/// Builds the venv beside its final place and renames it in, so a half-made venv is never
/// seen by another test process doing the same.
fn create_venv(venv: &Path) {
    let staging = venv.with_file_name(format!("venv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    run(Command::new("python3").arg("-m").arg("venv").arg(&staging));
    pip_install(&staging.join("bin/python"));
    if std::fs::rename(&staging, venv).is_err() {
        // Another process finished first; use its venv.
        let _ = std::fs::remove_dir_all(&staging);
    }
}

fn pip_install(python: &Path) {
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg("--find-links")
        .arg(wheels_dir())
        .args(REQUIREMENTS));
}

/// A wheel from PyPI (`name==version`), downloaded into ~/.cache/edgeimg/wheels if missing.
pub fn wheel(requirement: &str, file_name: &str) -> PathBuf {
    let path = wheels_dir().join(file_name);
    if !path.exists() {
        run(Command::new(python())
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
            ])
            .arg("--dest")
            .arg(wheels_dir())
            .arg(requirement));
        assert!(
            path.exists(),
            "pip downloaded {requirement} but not {file_name}"
        );
    }
    path
}

/// Runs a Python script in the venv and returns what it printed.
pub fn run_script(script: &str, args: &[&Path]) -> String {
    run(Command::new(python()).arg("-c").arg(script).args(args))
}

/// Runs a Python file in the venv and returns what it printed.
pub fn run_file(path: &Path, args: &[&Path]) -> String {
    run(Command::new(python()).arg(path).args(args))
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|o| o.status.success())
}
