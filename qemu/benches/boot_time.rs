//! Boot-to-ready time of the harness's fixture (Alpine linux-virt + a tiny busybox initramfs)
//! on both architectures: `cargo bench -p edgeimg-qemu --bench boot_time [-- RUNS]`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{fixture_initramfs, kernel, SERVING_INIT};
use edgeimg_qemu::{Arch, Board, BootSpec, Qemu, ShutdownRequest, SpawnOptions};

fn main() {
    // `cargo bench` passes `--bench`; the optional number is the run count.
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    for arch in [Arch::X86_64, Arch::Aarch64] {
        let dir = tempfile::tempdir().unwrap();
        let kernel = kernel(arch);
        let mut spec = BootSpec::kernel(Board::generic(arch), kernel);
        spec.initrd = Some(fixture_initramfs(arch, Some(SERVING_INIT), dir.path()));
        spec.append = "quiet".into();
        spec.forward_port = Some(8000);
        let (mut host, mut guest) = (Vec::new(), Vec::new());
        let mut accel = String::new();
        for _ in 0..runs {
            let mut vm = Qemu::spawn(&spec, &SpawnOptions::default()).unwrap();
            let ready = vm.wait_for_ready(Duration::from_secs(120)).unwrap();
            host.push(ready.host_boot_to_ready);
            guest.push(Duration::from_millis(ready.line.ms_since_boot));
            accel = vm.accel().accel.to_string();
            let _ = vm.shutdown(
                ShutdownRequest::ConsoleInput("poweroff\n".into()),
                Duration::from_secs(30),
            );
        }
        host.sort();
        guest.sort();
        println!(
            "{arch} ({accel}, {runs} runs): boot-to-ready host min {:?} median {:?}; guest min {:?} median {:?}",
            host[0],
            host[runs / 2],
            guest[0],
            guest[runs / 2]
        );
    }
}
