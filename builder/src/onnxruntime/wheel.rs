//! libonnxruntime for an arch, taken from the official `onnxruntime` wheel on PyPI (Alpine's
//! mirror may not be reachable and Alpine's own package is built for musl; PyPI is), cached.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::recipe::Arch;

pub const ORT_VERSION: &str = "1.31.1";
/// Use this library instead of the wheel's (host reference runs only).
pub const LIBRARY_ENV: &str = "EDGEIMG_ONNXRUNTIME_LIB";

/// Path of `libonnxruntime.so.<version>` for `arch`, extracted from the cached wheel
/// (downloaded with pip when missing).
pub fn onnxruntime_library(cache_dir: &Path, arch: Arch) -> Result<PathBuf> {
    let lib_name = format!("libonnxruntime.so.{ORT_VERSION}");
    let dest = cache_dir
        .join("onnxruntime")
        .join(ORT_VERSION)
        .join(arch.alpine())
        .join(&lib_name);
    if dest.is_file() {
        return Ok(dest);
    }
    let wheel = wheel(cache_dir, arch)?;
    let file = std::fs::File::open(&wheel)?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a wheel (zip)", wheel.display()))?;
    let member = format!("onnxruntime/capi/{lib_name}");
    let mut entry = zip
        .by_name(&member)
        .with_context(|| format!("{} has no {member}", wheel.display()))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes)?;
    std::fs::create_dir_all(dest.parent().unwrap())?;
    let tmp = dest.with_extension("partial");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
}

fn wheel(cache_dir: &Path, arch: Arch) -> Result<PathBuf> {
    let dir = cache_dir.join("wheels");
    let platform = format!("manylinux_2_28_{}", arch.alpine());
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                n.starts_with(&format!("onnxruntime-{ORT_VERSION}-"))
                    && n.ends_with(&format!("{platform}.whl"))
            })
    };
    if let Some(w) = find() {
        return Ok(w);
    }
    let status = Command::new("pip")
        .args(["download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.11"])
        .args(["--platform", &platform, "-d"])
        .arg(&dir)
        .arg(format!("onnxruntime=={ORT_VERSION}"))
        .status()
        .context("cannot run pip to fetch the onnxruntime wheel (tests/setup.sh installs what is needed)")?;
    match find() {
        Some(w) if status.success() => Ok(w),
        _ => bail!("could not download the onnxruntime {ORT_VERSION} wheel for {platform} from PyPI into {}", dir.display()),
    }
}
