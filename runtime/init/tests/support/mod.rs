//! What edge-init's boot tests share: the stand-in device they boot (init is what is under
//! test, the server is a script) and booting it with the project's QEMU harness. The Alpine
//! kernel and userland, the initramfs writer and the edge-init build come from
//! `edgeimg-test-support`.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use edge_config::{DeviceConfig, Engine, InitConfig, ModelConfig, NetworkConfig, RuntimeConfig};
use edgeimg_qemu::{Board, BootSpec, Disk, Nic, Qemu, RunningVm, SpawnOptions};
use edgeimg_test_support::alpine::AlpineRoot;
use edgeimg_test_support::initramfs::Initramfs;

pub const STANDIN_PATH: &str = "/bin/health-server";

/// The device config init reads, serving a stand-in model with the stand-in server.
pub fn device_config(init: InitConfig) -> DeviceConfig {
    DeviceConfig {
        system: None,
        hostname: "edge-init-test".to_string(),
        init,
        runtime: RuntimeConfig {
            engine: Engine::Tract,
            onnxruntime_library: None,
            listen: "0.0.0.0:8000".to_string(),
            threads: 0,
            max_body_bytes: Some(1 << 20),
            max_concurrency: 1,
            bearer_token: None,
            bearer_token_file: None,
            start_plan: edge_config::Plan::Quick,
            limits: Default::default(),
            tls: None,
            model_updates: None,
            models: vec![ModelConfig {
                name: "standin".to_string(),
                path: "/models/standin.onnx".to_string(),
                version: "1".to_string(),
            }],
        },
    }
}

/// Init's part of the config: `modules` to load, the stand-in server as `uid`:`gid`.
pub fn init_config(modules: Vec<String>, uid: u32, gid: u32) -> InitConfig {
    InitConfig {
        modules,
        network: NetworkConfig {
            dhcp: false,
            interface: None,
        },
        data: None,
        server_uid: uid,
        server_gid: gid,
        server_path: STANDIN_PATH.to_string(),
        server_args: Vec::new(),
        debug_shell: false,
    }
}

/// Which busybox the stand-in server runs on.
pub enum Busybox {
    /// Alpine's own (musl, dynamically linked: its loader comes along). No httpd.
    Alpine,
    /// This host's `busybox-static` (Debian's, x86_64), which has httpd.
    HostStatic,
}

/// An initramfs with edge-init as /init, `busybox` as /bin/sh, the kernel modules `names` with
/// their dependencies (as Alpine ships them, compressed: init decompresses) and the module
/// index cut down to them (what coldplug matches devices against), the stand-in `server`
/// script and the device config `config` makes from the modules' paths.
pub fn initramfs(
    root: &AlpineRoot,
    names: &[&str],
    busybox: Busybox,
    server: &str,
    config: impl FnOnce(Vec<String>) -> DeviceConfig,
) -> Initramfs {
    let mut image = Initramfs::with_dirs(&["proc", "sys", "run", "tmp", "data", "etc/edgeimg"]);
    let mut modules = Vec::new();
    let shipped = root.module_load_order(names);
    for relative in &shipped {
        let in_image = format!("/lib/modules/{}/{relative}", root.kernel_version);
        let bytes = std::fs::read(root.modules_dir().join(relative)).unwrap();
        image.file(&in_image, 0o644, bytes);
        modules.push(in_image);
    }
    for (name, text) in root.index_files(&shipped) {
        let in_image = format!("/lib/modules/{}/{name}", root.kernel_version);
        image.file(&in_image, 0o644, text.into_bytes());
    }
    let init = edgeimg_test_support::device::edge_init(root.arch);
    image.file("/init", 0o755, std::fs::read(init).unwrap());
    match busybox {
        Busybox::Alpine => image.alpine_busybox(root),
        Busybox::HostStatic => image.file(
            "/bin/busybox",
            0o755,
            std::fs::read("/bin/busybox")
                .expect("/bin/busybox: install busybox-static (tests/setup.sh does)"),
        ),
    }
    image.symlink("/bin/sh", "busybox");
    image.file(STANDIN_PATH, 0o755, server.as_bytes().to_vec());
    image.file(
        edge_config::DEVICE_CONFIG_PATH,
        0o644,
        config(modules).to_toml().into_bytes(),
    );
    image
}

/// Boots `initrd` on Alpine's kernel with the project's QEMU harness (q35 or virt), the guest's
/// port 8000 forwarded, `disk` attached, the network card `nic`.
pub fn boot(
    root: &AlpineRoot,
    initrd: &Path,
    append: &str,
    disk: Option<&Path>,
    nic: Nic,
) -> RunningVm {
    let mut spec = BootSpec::kernel(Board::generic(root.arch), &root.kernel);
    spec.initrd = Some(initrd.to_path_buf());
    spec.append = append.to_string();
    spec.forward_port = Some(8000);
    spec.nic = nic;
    spec.disks.extend(disk.map(Disk::new));
    Qemu::spawn(&spec, &SpawnOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Generous: TCG on a busy 2-core machine; a healthy boot takes ~10 s.
pub const BOOT: Duration = Duration::from_secs(120);

/// The next console line with `needle`; fails the test with the console tail otherwise.
pub fn expect_line(vm: &mut RunningVm, needle: &str, timeout: Duration) -> String {
    vm.wait_for_next_line(needle, timeout)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every console line of the boot so far (the whole log file).
pub fn console_log(vm: &RunningVm) -> Vec<String> {
    String::from_utf8_lossy(&std::fs::read(vm.console_log_path()).unwrap())
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

/// Fails the test with `why` and the console tail.
pub fn fail(vm: &RunningVm, why: &str) -> ! {
    panic!("{why}\n--- console ---\n{}", vm.console_tail(80));
}
