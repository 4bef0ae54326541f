//! The Python that stands for Python's onnxruntime (what the benchmark compares with, what the
//! model tests check against): a venv in `<cache>/venv` with [`PYTHON_REQUIREMENTS`], made on
//! first use.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::pinned::{ONNXRUNTIME_VERSION, PYTHON_REQUIREMENTS};

/// The venv's python, with onnxruntime, onnx, numpy, spdx-tools, tritonclient, pillow and onnxconverter-common installed (made or completed now when
/// it is not). The venv is built beside its final place and renamed in, so a half-made venv is
/// never seen by another process doing the same. Its console scripts (`bin/pyspdxtools`, ...)
/// then name the staging folder's python in their first line: run tools as `python -m`.
pub fn python(cache_dir: &Path) -> Result<PathBuf> {
    let venv = cache_dir.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("cannot create {}", cache_dir.display()))?;
        let staging = tempfile::Builder::new()
            .prefix(".venv-")
            .tempdir_in(cache_dir)
            .with_context(|| format!("cannot create a folder in {}", cache_dir.display()))?;
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(staging.path()))
        .context("cannot make a Python venv (install python3-venv)")?;
        pip_install(&staging.path().join("bin/python"), cache_dir)?;
        let staged = staging.keep();
        if std::fs::rename(&staged, &venv).is_err() {
            // Another process finished first; its venv is as good, and ours goes.
            let _ = std::fs::remove_dir_all(&staged);
        }
    }
    // Imports that succeed only with the pinned packages installed.
    let check = format!(
        "import numpy, onnx, onnxconverter_common, onnxruntime, PIL, spdx_tools, tritonclient.http; \
         assert onnxruntime.__version__ == '{ONNXRUNTIME_VERSION}', onnxruntime.__version__"
    );
    if !succeeds(Command::new(&python).args(["-c", &check])) {
        pip_install(&python, cache_dir)?;
    }
    Ok(python)
}

fn pip_install(python: &Path, cache_dir: &Path) -> Result<()> {
    run(Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg("--find-links")
        .arg(cache_dir.join("wheels"))
        .args(PYTHON_REQUIREMENTS))
    .with_context(|| {
        format!(
            "cannot install {} into the venv",
            PYTHON_REQUIREMENTS.join(" ")
        )
    })
}

fn run(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|o| o.status.success())
}
