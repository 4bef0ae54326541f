//! Wheels from PyPI ([`edgeimg_pypi::pinned`]) and the Python venv, for tests.

use std::path::PathBuf;

use edgeimg_pypi::Wheel;

use crate::cache_dir;

/// The cached wheel, downloaded with pip when missing.
pub fn wheel(wheel: &Wheel) -> PathBuf {
    wheel.path(&cache_dir()).unwrap_or_else(|e| panic!("{e:#}"))
}

/// `member` of the wheel, unpacked once into `<cache>/extracted/NAME-VERSION/MEMBER`.
pub fn unpacked(wheel: &Wheel, member: &str) -> PathBuf {
    let dest = cache_dir()
        .join("extracted")
        .join(format!("{}-{}", wheel.name, wheel.version))
        .join(member);
    wheel
        .unpack(&cache_dir(), member, &dest)
        .unwrap_or_else(|e| panic!("{e:#}"));
    dest
}

/// The venv's python, with the pinned onnxruntime, onnx, numpy, spdx-tools and tritonclient.
pub fn python() -> PathBuf {
    edgeimg_pypi::venv::python(&cache_dir()).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The host's real ONNX Runtime library, the one the builder puts into images.
pub fn onnxruntime_library() -> PathBuf {
    let arch = crate::Arch::host().expect("an x86_64 or aarch64 host");
    edgeimg::image::onnxruntime::onnxruntime_library(&cache_dir(), arch)
        .unwrap_or_else(|e| panic!("{e:#}"))
}
