//! QEMU's power button (`system_powerdown`, what the harness's `RunningVm::powerdown` sends)
//! must power an edgeimg device off cleanly, on both QEMU boards, with Alpine's real
//! `linux-virt` kernel and the board's power-button modules: on x86_64 q35 the ACPI button
//! (`button` + `evdev`, KEY_POWER on /dev/input), on aarch64 `virt` the device tree's GPIO key
//! on the PL061 (`gpio-pl061`, watched through /dev/gpiochip0: linux-virt has no gpio_keys).
//!
//! The server is a stand-in (a busybox `sleep`): init is what is under test, and a running
//! server shows the power-off stops it gracefully. Runs when the arch's
//! `qemu-system-*` is installed; skipped otherwise.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use edge_config::{DeviceConfig, Engine, InitConfig, ModelConfig, NetworkConfig, RuntimeConfig};
use support::alpine::{Arch, KERNEL_VERSION};
use support::alpine_root::AlpineRoot;
use support::initramfs::Initramfs;
use support::qemu::{BootSpec, Nic, Vm};

/// A server that runs until told to stop (Alpine's busybox has no httpd; readiness is
/// covered by qemu_boot.rs).
const STANDIN_SERVER: &str = "#!/bin/sh\nexec busybox sleep 1000000\n";

/// The power-button modules of the board (as in the builder's QEMU board profiles).
fn button_modules(arch: Arch) -> &'static [&'static str] {
    match arch {
        Arch::X86_64 => &[
            "kernel/drivers/acpi/button.ko.gz",
            "kernel/drivers/input/evdev.ko.gz",
        ],
        Arch::Aarch64 => &[
            "kernel/drivers/gpio/gpio-pl061.ko.gz",
            "kernel/drivers/acpi/button.ko.gz",
            "kernel/drivers/input/evdev.ko.gz",
        ],
    }
}

fn device_config(modules: Vec<String>) -> DeviceConfig {
    DeviceConfig {
        hostname: "edge-init-button".to_string(),
        init: InitConfig {
            modules,
            network: NetworkConfig {
                dhcp: false,
                interface: None,
            },
            data: None,
            server_uid: 1000,
            server_gid: 1000,
            server_path: "/bin/health-server".to_string(),
            server_args: Vec::new(),
            debug_shell: false,
        },
        runtime: RuntimeConfig {
            engine: Engine::Tract,
            onnxruntime_library: None,
            listen: "0.0.0.0:8000".to_string(),
            threads: 0,
            max_body_bytes: 1 << 20,
            max_concurrency: 1,
            bearer_token: None,
            models: vec![ModelConfig {
                name: "standin".to_string(),
                path: "/models/standin.onnx".to_string(),
                version: "1".to_string(),
            }],
        },
    }
}

fn initramfs(init: &Path, root: &AlpineRoot, arch: Arch) -> Vec<u8> {
    let mut image = Initramfs::default();
    let mut modules = Vec::new();
    for relative in root.kernel.load_order(button_modules(arch)) {
        let in_image = format!("/lib/modules/{KERNEL_VERSION}/{relative}");
        let bytes = std::fs::read(root.kernel.module_file(&relative)).unwrap();
        image.file(&in_image, 0o644, bytes);
        modules.push(in_image);
    }
    for dir in ["/dev", "/proc", "/sys", "/run", "/tmp", "/etc/edgeimg"] {
        image.dir(dir, 0o755);
    }
    image.char_device("/dev/console", 0o600, 5, 1);
    image.file("/init", 0o755, std::fs::read(init).unwrap());
    image.file("/bin/busybox", 0o755, std::fs::read(&root.busybox).unwrap());
    image.file(
        &format!("/lib/{}", root.ld_musl_name),
        0o755,
        std::fs::read(&root.ld_musl).unwrap(),
    );
    image.symlink("/bin/sh", "busybox");
    image.file(
        "/bin/health-server",
        0o755,
        STANDIN_SERVER.as_bytes().to_vec(),
    );
    image.file(
        edge_config::DEVICE_CONFIG_PATH,
        0o644,
        device_config(modules).to_toml().into_bytes(),
    );
    image.into_bytes()
}

fn power_button_powers_off(arch: Arch) {
    if !support::qemu::qemu_available(arch) {
        eprintln!("qemu-system-{} not installed: skipping", arch.alpine());
        return;
    }
    let work =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("power-button-{}", arch.alpine()));
    std::fs::create_dir_all(&work).unwrap();
    let root = AlpineRoot::extract(arch);
    let init = support::build::edge_init(arch);
    let initrd = work.join("initramfs.cpio");
    std::fs::write(&initrd, initramfs(&init, &root, arch)).unwrap();

    let console = match arch {
        Arch::X86_64 => "ttyS0",
        Arch::Aarch64 => "ttyAMA0",
    };
    let monitor = work.join("monitor.sock");
    let mut vm = Vm::boot(&BootSpec {
        arch,
        kernel: &root.kernel.kernel,
        initrd: &initrd,
        append: &format!("console={console} panic=-1"),
        disk: None,
        nic: Nic::Plugged,
        host_port: std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port(),
        guest_port: 8000,
        monitor: &monitor,
    });
    // Generous: TCG on a busy 2-core machine.
    let boot = Duration::from_secs(120);
    let button = vm.expect_line("edge-init: power button:", boot);
    let expected = match arch {
        Arch::X86_64 => "/dev/input/event",
        Arch::Aarch64 => "/dev/gpiochip0 line 3",
    };
    assert!(button.contains(expected), "{button}");

    let pressed = Instant::now();
    vm.monitor("system_powerdown");
    let off = vm.expect_line("EDGEIMG-POWEROFF", Duration::from_secs(60));
    let printed = pressed.elapsed();
    assert!(
        off.starts_with("EDGEIMG-POWEROFF reason=power-button "),
        "{off}"
    );
    assert!(
        vm.wait_exit(Duration::from_secs(60)),
        "QEMU did not exit cleanly"
    );
    let exited = pressed.elapsed();
    for bad in ["EDGEIMG-ERROR", "SIGKILL needed"] {
        if let Some(line) = vm.log.iter().find(|l| l.contains(bad)).cloned() {
            vm.fail(&format!("power-off was not clean: {line}"));
        }
    }
    eprintln!(
        "{}: {button}; POWEROFF {} ms and QEMU exit {} ms after system_powerdown",
        arch.alpine(),
        printed.as_millis(),
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
