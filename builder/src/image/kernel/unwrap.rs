//! Kernel image formats: QEMU `-kernel` and the Pi firmware want arm64's raw `Image`, while
//! distributions ship it wrapped (EFI zboot) or gzip-compressed.

use std::io::Read;

use anyhow::{bail, Context, Result};

const ARM64_MAGIC_OFFSET: usize = 56;
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
const BZIMAGE_MAGIC_OFFSET: usize = 0x202;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// arm64 `Image`, bootable as is.
    Arm64Image,
    /// x86 bzImage, bootable as is.
    BzImage,
    /// EFI zboot (`MZ` + `zimg`): a compressed Image inside a small EFI stub.
    EfiZboot,
    /// A gzip stream (Debian's arm64 `vmlinuz`).
    Gzip,
    Unknown,
}

impl KernelFormat {
    pub fn detect(bytes: &[u8]) -> KernelFormat {
        if bytes.starts_with(b"MZ") && bytes.get(4..8) == Some(b"zimg") {
            KernelFormat::EfiZboot
        } else if bytes.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) == Some(ARM64_MAGIC) {
            KernelFormat::Arm64Image
        } else if bytes.get(BZIMAGE_MAGIC_OFFSET..BZIMAGE_MAGIC_OFFSET + 4) == Some(b"HdrS") {
            KernelFormat::BzImage
        } else if bytes.starts_with(&[0x1f, 0x8b]) {
            KernelFormat::Gzip
        } else {
            KernelFormat::Unknown
        }
    }
}

/// The bootable kernel inside `bytes`: a zboot or gzip-wrapped arm64 kernel is unpacked to its
/// raw `Image`; a bzImage or an already raw Image comes back unchanged.
pub fn unwrap_kernel(bytes: &[u8]) -> Result<Vec<u8>> {
    match KernelFormat::detect(bytes) {
        KernelFormat::Arm64Image | KernelFormat::BzImage => Ok(bytes.to_vec()),
        KernelFormat::EfiZboot => unwrap_zboot(bytes),
        KernelFormat::Gzip => {
            let image = gunzip(bytes).context("cannot decompress the gzip kernel")?;
            match KernelFormat::detect(&image) {
                KernelFormat::Arm64Image | KernelFormat::BzImage => Ok(image),
                KernelFormat::EfiZboot => unwrap_zboot(&image),
                _ => bail!("the gzip kernel does not contain an arm64 Image or x86 bzImage"),
            }
        }
        KernelFormat::Unknown => bail!(
            "not a kernel image this tool knows (no arm64 Image magic, bzImage header, EFI zboot or gzip); check the kernel package's file"
        ),
    }
}

/// The gzip stream a packaged kernel already carries its arm64 `Image` in (a gzip'd `vmlinuz`,
/// or an EFI zboot's gzip payload), as a slice of `bytes`: where a gzip'd kernel is wanted,
/// the package's own is used instead of compressing the Image again.
pub fn packaged_gzip(bytes: &bytes::Bytes) -> Option<bytes::Bytes> {
    match KernelFormat::detect(bytes) {
        KernelFormat::Gzip => Some(bytes.clone()),
        KernelFormat::EfiZboot => {
            let (offset, size, comp) = zboot_header(bytes).ok()?;
            (comp == "gzip" && offset.checked_add(size)? <= bytes.len())
                .then(|| bytes.slice(offset..offset + size))
        }
        _ => None,
    }
}

/// Linux's EFI zboot header: `MZ`, `zimg`, payload offset (u32 le @8), payload size
/// (u32 le @12), compression name (NUL-terminated @24).
fn zboot_header(bytes: &[u8]) -> Result<(usize, usize, String)> {
    let word = |at: usize| -> Result<usize> {
        let b: [u8; 4] = bytes
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .context("the EFI zboot header is truncated")?;
        Ok(u32::from_le_bytes(b) as usize)
    };
    let comp = bytes.get(24..56).unwrap_or(&[]);
    let comp =
        String::from_utf8_lossy(&comp[..comp.iter().position(|&b| b == 0).unwrap_or(comp.len())])
            .into_owned();
    Ok((word(8)?, word(12)?, comp))
}

fn unwrap_zboot(bytes: &[u8]) -> Result<Vec<u8>> {
    let (offset, size, comp) = zboot_header(bytes)?;
    let payload = offset
        .checked_add(size)
        .and_then(|end| bytes.get(offset..end))
        .with_context(|| {
            format!("the EFI zboot payload ({size} bytes at {offset}) lies past the end of the {}-byte file", bytes.len())
        })?;
    let image = match comp.as_str() {
        "gzip" => gunzip(payload)?,
        "zstd" | "zstd22" => {
            zstd::decode_all(payload).context("cannot decompress the zstd payload")?
        }
        other => bail!(
            "the EFI zboot kernel is compressed with {other:?}; only gzip and zstd are supported"
        ),
    };
    if KernelFormat::detect(&image) != KernelFormat::Arm64Image {
        bail!("the EFI zboot payload is not an arm64 Image (no ARM\\x64 magic at offset 56)");
    }
    Ok(image)
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fake_arm64_image() -> Vec<u8> {
        let mut img = vec![0u8; 4096];
        img[ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4].copy_from_slice(ARM64_MAGIC);
        img
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_raw_kernels() {
        let img = fake_arm64_image();
        assert_eq!(unwrap_kernel(&img).unwrap(), img);
        assert_eq!(unwrap_kernel(&gz(&img)).unwrap(), img);
        assert!(unwrap_kernel(b"definitely not a kernel").is_err());
    }

    #[test]
    fn a_packaged_gzip_stream_is_reused_as_is() {
        let img = fake_arm64_image();
        let gzipped = bytes::Bytes::from(gz(&img));
        assert_eq!(packaged_gzip(&gzipped), Some(gzipped.clone()));
        assert_eq!(packaged_gzip(&bytes::Bytes::from(img.clone())), None);

        let mut zboot = vec![0u8; 64];
        zboot[..2].copy_from_slice(b"MZ");
        zboot[4..8].copy_from_slice(b"zimg");
        zboot[8..12].copy_from_slice(&64u32.to_le_bytes());
        zboot[12..16].copy_from_slice(&(gzipped.len() as u32).to_le_bytes());
        zboot[24..28].copy_from_slice(b"gzip");
        zboot.extend_from_slice(&gzipped);
        zboot.extend_from_slice(&[0u8; 32]); // the stub's padding after the payload
        let zboot = bytes::Bytes::from(zboot);
        assert_eq!(packaged_gzip(&zboot), Some(gzipped));
        assert_eq!(unwrap_kernel(&zboot).unwrap(), img);
    }

    #[test]
    fn truncated_zboot_is_an_error() {
        let mut z = vec![0u8; 64];
        z[..2].copy_from_slice(b"MZ");
        z[4..8].copy_from_slice(b"zimg");
        z[8..12].copy_from_slice(&1000u32.to_le_bytes());
        z[12..16].copy_from_slice(&10u32.to_le_bytes());
        let err = unwrap_kernel(&z).unwrap_err().to_string();
        assert!(err.contains("past the end"), "{err}");
    }
}
