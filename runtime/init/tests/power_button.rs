//! QEMU's power button (`system_powerdown`, what the harness's `RunningVm::powerdown` sends)
//! must power an edgeimg device off cleanly, on both QEMU boards, with Alpine's real
//! `linux-virt` kernel and the board's power-button modules: on x86_64 q35 the ACPI button
//! (`button` + `evdev`, KEY_POWER on /dev/input), on aarch64 `virt` the device tree's GPIO key
//! on the PL061 (`gpio-pl061`, watched through /dev/gpiochip0: linux-virt has no gpio_keys).
//!
//! The server is a stand-in (a busybox `sleep`): init is what is under test, and a running
//! server shows the power-off stops it gracefully. Booted by the project's QEMU harness, whose
//! `RunningVm::powerdown` is what presses the button; without QEMU the tests fail.

mod support;

use std::path::Path;
use std::time::Duration;

use edgeimg_qemu::{Nic, ShutdownRequest};
use edgeimg_test_support::alpine::AlpineRoot;
use edgeimg_test_support::Arch;
use support::{console_log, expect_line, fail, Busybox, BOOT};

/// A server that runs until told to stop (Alpine's busybox has no httpd; readiness is
/// covered by qemu_boot.rs).
const STANDIN_SERVER: &str = "#!/bin/sh\nexec busybox sleep 1000000\n";

/// The power-button modules of the board (as in the builder's QEMU board profiles).
fn button_modules(arch: Arch) -> &'static [&'static str] {
    match arch {
        Arch::X86_64 => &["button", "evdev"],
        Arch::Aarch64 => &["gpio-pl061", "button", "evdev"],
    }
}

fn power_button_powers_off(arch: Arch) {
    let work =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("power-button-{}", arch.alpine()));
    std::fs::create_dir_all(&work).unwrap();
    let root = AlpineRoot::get(arch);
    let image = support::initramfs(
        &root,
        button_modules(arch),
        Busybox::Alpine,
        STANDIN_SERVER,
        |modules| support::device_config(support::init_config(modules, 1000, 1000)),
    );
    let initrd = work.join("initramfs.cpio");
    std::fs::write(&initrd, image.into_bytes()).unwrap();

    let mut vm = support::boot(&root, &initrd, "panic=-1", None, Nic::Plugged);
    let vm = &mut vm;
    let button = expect_line(vm, "edge-init: power button:", BOOT);
    let expected = match arch {
        Arch::X86_64 => "/dev/input/event",
        Arch::Aarch64 => "/dev/gpiochip0 line 3",
    };
    assert!(button.contains(expected), "{button}");

    let exited = vm
        .shutdown(ShutdownRequest::PowerButton, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let off = expect_line(vm, "EDGEIMG-POWEROFF", Duration::from_secs(1));
    assert!(
        off.starts_with("EDGEIMG-POWEROFF reason=power-button "),
        "{off}"
    );
    let status = vm.exit_status().unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "QEMU did not exit cleanly: {status:?}"
    );
    for bad in ["EDGEIMG-ERROR", "SIGKILL needed"] {
        if let Some(line) = console_log(vm).iter().find(|l| l.contains(bad)) {
            fail(vm, &format!("power-off was not clean: {line}"));
        }
    }
    eprintln!(
        "{}: {button}; QEMU exit {} ms after system_powerdown",
        arch.alpine(),
        exited.as_millis()
    );
}

#[test]
fn power_button_powers_off_x86_64_q35() {
    power_button_powers_off(Arch::X86_64);
}

#[test]
fn power_button_powers_off_aarch64_virt() {
    power_button_powers_off(Arch::Aarch64);
}
