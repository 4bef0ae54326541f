//! Loading one module file into the kernel.
//!
//! Alpine's `linux-virt` has no in-kernel module decompression, so `.ko.gz` files are
//! decompressed here and handed to `init_module` (the builder ships `.ko` files; a `.ko.gz`
//! still loads).

use std::ffi::CString;
use std::io::Read;
use std::path::Path;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("cannot read {path}: {source} (is the module in the image?)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {format} modules are not supported; ship .ko or .ko.gz")]
    Unsupported { path: String, format: &'static str },
    #[error("{path}: gzip data is corrupt: {source}")]
    Decompress {
        path: String,
        source: std::io::Error,
    },
    #[error("kernel refused {path}: {errno} (check modules.dep order and kernel version)")]
    Kernel { path: String, errno: Errno },
}

/// How a module file is packed, decided by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    Plain,
    Gzip,
    Unsupported(&'static str),
}

pub fn packing(path: &str) -> Packing {
    if path.ends_with(".ko") {
        Packing::Plain
    } else if path.ends_with(".ko.gz") {
        Packing::Gzip
    } else if path.ends_with(".ko.xz") {
        Packing::Unsupported("xz")
    } else if path.ends_with(".ko.zst") {
        Packing::Unsupported("zstd")
    } else {
        Packing::Unsupported("non-module (not .ko/.ko.gz)")
    }
}

/// The module name the kernel uses (`virtio_net` for `.../virtio_net.ko.gz`), for messages.
pub fn module_name(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file)
}

/// The bytes `init_module` wants: the ELF object, decompressed if needed.
pub fn module_image(path: &str, raw: Vec<u8>) -> Result<Vec<u8>, ModuleError> {
    match packing(path) {
        Packing::Plain => Ok(raw),
        Packing::Gzip => {
            let mut elf = Vec::with_capacity(raw.len() * 3);
            flate2::read::GzDecoder::new(raw.as_slice())
                .read_to_end(&mut elf)
                .map_err(|source| ModuleError::Decompress {
                    path: path.to_string(),
                    source,
                })?;
            Ok(elf)
        }
        Packing::Unsupported(format) => Err(ModuleError::Unsupported {
            path: path.to_string(),
            format,
        }),
    }
}

/// Loads one module; a module that is already loaded (or built in) counts as loaded.
pub fn load(path: &str) -> Result<(), ModuleError> {
    if let Packing::Unsupported(format) = packing(path) {
        return Err(ModuleError::Unsupported {
            path: path.to_string(),
            format,
        });
    }
    let raw = std::fs::read(Path::new(path)).map_err(|source| ModuleError::Read {
        path: path.to_string(),
        source,
    })?;
    let image = module_image(path, raw)?;
    let no_params = CString::default();
    match nix::kmod::init_module(&image, &no_params) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(errno) => Err(ModuleError::Kernel {
            path: path.to_string(),
            errno,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn packing_follows_the_file_name() {
        assert_eq!(packing("/lib/modules/v/kernel/a.ko"), Packing::Plain);
        assert_eq!(packing("/lib/modules/v/kernel/a.ko.gz"), Packing::Gzip);
        assert_eq!(packing("a.ko.xz"), Packing::Unsupported("xz"));
        assert!(matches!(packing("a.txt"), Packing::Unsupported(_)));
    }

    #[test]
    fn module_names_drop_directory_and_suffix() {
        assert_eq!(
            module_name("/lib/modules/6.18/kernel/drivers/net/virtio_net.ko.gz"),
            "virtio_net"
        );
        assert_eq!(module_name("failover.ko"), "failover");
    }

    #[test]
    fn gzip_modules_are_decompressed() {
        let elf = b"\x7fELF module body".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&elf).unwrap();
        let packed = gz.finish().unwrap();
        assert_eq!(module_image("x/virtio_net.ko.gz", packed).unwrap(), elf);
        assert_eq!(module_image("x/plain.ko", elf.clone()).unwrap(), elf);
    }

    #[test]
    fn corrupt_gzip_is_an_error_naming_the_file() {
        let error = module_image("x/broken.ko.gz", b"not gzip".to_vec()).unwrap_err();
        assert!(error.to_string().contains("x/broken.ko.gz"));
    }

    #[test]
    fn missing_module_is_a_read_error() {
        let error = load("/nonexistent/virtio_net.ko.gz").unwrap_err();
        assert!(matches!(error, ModuleError::Read { .. }));
    }
}
