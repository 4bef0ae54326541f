//! libonnxruntime for an arch, taken from the official `onnxruntime` wheel on PyPI (Alpine's
//! mirror may not be reachable and Alpine's own package is built for musl; PyPI is), cached.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::pypi::Wheel;
use edge_config::Arch;

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
    let platform = format!("manylinux_2_28_{}", arch.alpine());
    let wheel = Wheel {
        name: "onnxruntime",
        version: ORT_VERSION,
        platform: Some(&platform),
    };
    wheel.unpack(cache_dir, &format!("onnxruntime/capi/{lib_name}"), &dest)?;
    Ok(dest)
}
