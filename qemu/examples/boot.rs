//! Boot a kernel (and initrd/dtb) on a board, wait for the readiness line, print the boot
//! times, type `poweroff` on the console and wait for QEMU to end. For manual checks:
//!
//! `cargo run -p edgeimg-qemu --example boot -- raspi3b KERNEL INITRD [DTB]`

use std::time::Duration;

use edgeimg_qemu::{BootSpec, ConsoleMode, Qemu, ShutdownRequest, SpawnOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [board, kernel, initrd, rest @ ..] = args.as_slice() else {
        return Err("usage: boot BOARD KERNEL INITRD [DTB]".into());
    };
    let mut spec = BootSpec::kernel(board.parse()?, kernel);
    spec.initrd = Some(initrd.into());
    spec.dtb = rest.first().map(Into::into);
    let opts = SpawnOptions {
        console: ConsoleMode::Tee,
        ..SpawnOptions::default()
    };
    let mut vm = Qemu::spawn(&spec, &opts)?;
    let ready = vm.wait_for_ready(Duration::from_secs(120))?;
    eprintln!(
        "\nready: {:?} on the host, {} ms in the guest, accel {} ({})",
        ready.host_boot_to_ready,
        ready.line.ms_since_boot,
        vm.accel().accel,
        vm.accel().reason
    );
    let took = vm.shutdown(
        ShutdownRequest::ConsoleInput("poweroff\n".into()),
        Duration::from_secs(30),
    )?;
    eprintln!("powered off in {took:?}");
    Ok(())
}
