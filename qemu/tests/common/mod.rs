//! Test fixtures: real Alpine 3.23 kernels (from `edgeimg-test-support`) and a tiny initramfs
//! built from Alpine's own busybox, musl and virtio-net modules, whose /init is a shell script
//! each test supplies.

#![allow(dead_code)] // each test binary uses a different part

use std::io::Read;
use std::path::{Path, PathBuf};

use edgeimg_qemu::Arch;
use edgeimg_test_support::alpine::AlpineRoot;
use edgeimg_test_support::initramfs::Initramfs;

/// Alpine's `linux-virt` kernel for `arch`, as `-kernel` boots it (a raw arm64 `Image`).
pub fn kernel(arch: Arch) -> PathBuf {
    AlpineRoot::get(arch).kernel
}

/// A tiny initramfs (uncompressed newc) in `dir`: Alpine's busybox and musl, virtio-net and
/// its dependencies decompressed (busybox's insmod loads plain `.ko` files, in the order of
/// their names), and `init` as /init (`None`: no /init at all, so the kernel panics).
pub fn fixture_initramfs(arch: Arch, init: Option<&str>, dir: &Path) -> PathBuf {
    let root = AlpineRoot::get(arch);
    let mut image = Initramfs::with_dirs(&[
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "lib/modules",
        "proc",
        "sys",
        "tmp",
    ]);
    image.alpine_busybox(&root);
    for (n, module) in root.module_load_order(&["virtio_net"]).iter().enumerate() {
        let packed = std::fs::read(root.modules_dir().join(module)).unwrap();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut plain)
            .unwrap();
        let name = Path::new(module.trim_end_matches(".gz"))
            .file_name()
            .unwrap();
        image.file(
            &format!("lib/modules/{:02}-{}", n + 1, name.to_string_lossy()),
            0o644,
            plain,
        );
    }
    if let Some(init) = init {
        let script = format!("#!/bin/busybox sh\n/bin/busybox --install -s\n{init}");
        image.file("init", 0o755, script.into_bytes());
    }
    let path = dir.join("initramfs.cpio");
    std::fs::write(&path, image.into_bytes()).unwrap();
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
