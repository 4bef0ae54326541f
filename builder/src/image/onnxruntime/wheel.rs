//! libonnxruntime for an arch, taken from the official `onnxruntime` wheel on PyPI (Alpine's
//! mirror may not be reachable and Alpine's own package is built for musl; PyPI is), cached.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::pypi::pinned;
use edge_config::Arch;

pub const ORT_VERSION: &str = pinned::ONNXRUNTIME_VERSION;
/// Use this library instead of the wheel's (host reference runs only).
pub const LIBRARY_ENV: &str = "EDGEIMG_ONNXRUNTIME_LIB";

/// Path of `libonnxruntime.so.<version>` for `arch`, extracted from the cached wheel
/// (downloaded with pip when missing).
pub fn onnxruntime_library(cache_dir: &Path, arch: Arch) -> Result<PathBuf> {
    let dest = library_path(cache_dir, arch);
    pinned::onnxruntime(arch).unpack(
        cache_dir,
        &format!("onnxruntime/capi/{}", library_name()),
        &dest,
    )?;
    Ok(dest)
}

/// The library or its wheel when already in the cache: nothing needs downloading.
pub fn onnxruntime_cached(cache_dir: &Path, arch: Arch) -> Option<PathBuf> {
    let library = library_path(cache_dir, arch);
    if library.is_file() {
        return Some(library);
    }
    pinned::onnxruntime(arch).cached(cache_dir)
}

fn library_name() -> String {
    format!("libonnxruntime.so.{ORT_VERSION}")
}

fn library_path(cache_dir: &Path, arch: Arch) -> PathBuf {
    cache_dir
        .join("onnxruntime")
        .join(ORT_VERSION)
        .join(arch.alpine())
        .join(library_name())
}
