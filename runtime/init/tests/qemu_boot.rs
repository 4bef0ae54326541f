//! Boots edge-init as PID 1 of a real Alpine `linux-virt` kernel in QEMU and checks what a
//! device relies on: drivers loaded by what the hardware asks for (virtio_net and virtio_blk
//! from their devices' modaliases, at boot and for a card plugged in later; ext4 because the
//! config lists it; all from `.ko.gz`), DHCP from QEMU's user network and again when the link
//! comes back, the server serving before any network, the data partition found by label +
//! PARTUUID, the server started unprivileged, READY and the audit line, a read-only root, no
//! console shell (even when the command line asks for one), a restart after the server is
//! killed, and a clean power-off on ctrl-alt-del (SIGINT to PID 1).
//!
//! The server is a stand-in (a busybox script that serves a report at `/v2/health/ready`):
//! init is what is under test. Runs when `qemu-system-x86_64` is installed; skipped otherwise.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use edge_config::{
    DataPartition, DeviceConfig, Engine, InitConfig, ModelConfig, NetworkConfig, RuntimeConfig,
};
use support::alpine::{AlpineKernel, Arch, KERNEL_VERSION};
use support::initramfs::Initramfs;
use support::qemu::{BootSpec, Nic, Vm};

const SERVER_UID: u32 = 1000;
const SERVER_GID: u32 = 1001;
const DISK_SIGNATURE: u32 = 0x5eed_0001;

const STANDIN_SERVER: &str = r#"#!/bin/sh
# Stand-in for edge-runtime: reports how init started it, then serves the report at
# /v2/health/ready with busybox httpd.
busybox mkdir -p /tmp/www/v2/health
{
  echo "args=$*"
  busybox id
  echo "hostname=$(busybox hostname)"
  busybox grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|SigBlk|SigIgn)' /proc/self/status
  busybox grep ' /data ' /proc/mounts
  busybox grep '^rootfs / ' /proc/mounts
  busybox touch /data/written-by-server && echo data-writable
  busybox touch /tmp/written-by-server && echo tmp-writable
} > /tmp/www/v2/health/ready 2>&1
exec busybox httpd -f -p 8000 -h /tmp/www
"#;

fn device_config(modules: Vec<String>, with_data: bool, debug_shell: bool) -> DeviceConfig {
    DeviceConfig {
        hostname: "edge-init-test".to_string(),
        init: InitConfig {
            modules,
            network: NetworkConfig {
                dhcp: true,
                interface: None,
            },
            data: with_data.then(|| DataPartition {
                label: Some("edge-data".to_string()),
                partuuid: Some(format!("{DISK_SIGNATURE:08x}-01")),
                fstype: "ext4".to_string(),
                mountpoint: "/data".to_string(),
            }),
            server_uid: SERVER_UID,
            server_gid: SERVER_GID,
            server_path: "/bin/health-server".to_string(),
            server_args: vec!["--from-test".to_string()],
            debug_shell,
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

fn initramfs(init: &Path, alpine: &AlpineKernel, with_data: bool, debug_shell: bool) -> Vec<u8> {
    let wanted = [
        "kernel/drivers/net/virtio_net.ko.gz",
        "kernel/drivers/block/virtio_blk.ko.gz",
        "kernel/fs/ext4/ext4.ko.gz",
    ];
    let mut image = Initramfs::default();
    let shipped = alpine.load_order(&wanted);
    for relative in &shipped {
        image.file(
            &format!("/lib/modules/{KERNEL_VERSION}/{relative}"),
            0o644,
            std::fs::read(alpine.module_file(relative)).unwrap(),
        );
    }
    for (name, text) in alpine.index_files(&shipped) {
        image.file(
            &format!("/lib/modules/{KERNEL_VERSION}/{name}"),
            0o644,
            text.into_bytes(),
        );
    }
    // No device asks for a file system: the config lists it. The virtio drivers come from
    // their devices' modaliases.
    let modules = vec![format!(
        "/lib/modules/{KERNEL_VERSION}/kernel/fs/ext4/ext4.ko.gz"
    )];
    for dir in [
        "/dev",
        "/proc",
        "/sys",
        "/run",
        "/tmp",
        "/data",
        "/etc/edgeimg",
    ] {
        image.dir(dir, 0o755);
    }
    image.char_device("/dev/console", 0o600, 5, 1);
    image.file("/init", 0o755, std::fs::read(init).unwrap());
    image.file(
        "/bin/busybox",
        0o755,
        std::fs::read("/bin/busybox").expect("busybox-static is installed"),
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
        device_config(modules, with_data, debug_shell)
            .to_toml()
            .into_bytes(),
    );
    image.into_bytes()
}

/// A work dir, the Alpine kernel and an initramfs with edge-init as /init.
fn prepare(name: &str, with_data: bool, debug_shell: bool) -> (PathBuf, AlpineKernel, PathBuf) {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&work).unwrap();
    let alpine = AlpineKernel::x86_64();
    let init = support::build::edge_init(Arch::X86_64);
    let initrd = work.join("initramfs.cpio");
    std::fs::write(&initrd, initramfs(&init, &alpine, with_data, debug_shell)).unwrap();
    (work, alpine, initrd)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).expect("connecting to the forwarded port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// QEMU's user network always leases this.
const LEASE_LINE: &str = "EDGEIMG-NET interface=eth0 address=10.0.2.15/24 gateway=10.0.2.2";

/// Typed on the console; a shell would print [`CONSOLE_ANSWER`], which the echo cannot.
const CONSOLE_PROBE: &str = "echo shell-probe-$((6*7))";
const CONSOLE_ANSWER: &str = "shell-probe-42";

/// The audit line of a default device: the server's ids, nothing privileged, root read-only,
/// no console shell.
fn assert_default_audit(vm: &mut Vm, audit: &str) {
    let zero = "0000000000000000";
    let want = format!(
        "uid={SERVER_UID} gid={SERVER_GID} groups=none cap_prm={zero} cap_eff={zero} \
cap_bnd={zero} cap_amb={zero} no_new_privs=1 root=ro console_shell=none"
    );
    let fields = audit
        .strip_prefix("EDGEIMG-AUDIT server_pid=")
        .and_then(|rest| rest.split_once(' '));
    match fields {
        Some((pid, rest)) if pid.parse::<u32>().is_ok() && rest == want => {}
        _ => vm.fail(&format!("audit line {audit:?} is not the default {want:?}")),
    }
}

#[test]
fn boots_serves_restarts_and_powers_off_in_qemu() {
    if !support::qemu::qemu_x86_64_available() {
        eprintln!("qemu-system-x86_64 not installed: skipping the edge-init boot test");
        return;
    }
    let (work, alpine, initrd) = prepare("edge-init-boot", true, false);
    let disk = work.join("data.img");
    support::disk::mbr_ext4_disk(&disk, 16, "edge-data", DISK_SIGNATURE);

    let port = free_port();
    let monitor = work.join("monitor.sock");
    let mut vm = Vm::boot(&BootSpec {
        arch: Arch::X86_64,
        kernel: &alpine.kernel,
        initrd: &initrd,
        // Asking for a shell on the command line must not open one.
        append: "console=ttyS0 panic=-1 edgeimg.selftest=kill-server edgeimg.debug_shell=1",
        disk: Some(&disk),
        nic: Nic::Plugged,
        host_port: port,
        guest_port: 8000,
        monitor: &monitor,
    });
    // Generous: TCG on a busy 2-core machine; a healthy boot takes ~10 s.
    let boot = Duration::from_secs(90);
    let refused = vm.expect_line("EDGEIMG-ERROR cmdline", boot);
    assert!(
        refused.contains("edgeimg.debug_shell is ignored"),
        "{refused}"
    );
    let coldplug = vm.expect_line("edge-init: coldplug:", boot);
    for driver in ["virtio_net", "virtio_blk"] {
        if !coldplug.contains(driver) {
            vm.fail(&format!("coldplug did not load {driver}: {coldplug}"));
        }
    }
    let data = vm.expect_line("EDGEIMG-DATA", boot);
    assert_eq!(data, "EDGEIMG-DATA device=/dev/vda1 mountpoint=/data");
    let ready = vm.expect_line("EDGEIMG-READY", boot);
    assert!(
        ready.starts_with("EDGEIMG-READY model=standin listen=0.0.0.0:8000 ms_since_boot="),
        "{ready}"
    );
    let audit = vm.expect_line("EDGEIMG-AUDIT", boot);
    assert_default_audit(&mut vm, &audit);

    let exit = vm.expect_line("EDGEIMG-SERVER-EXIT", boot);
    assert!(
        exit.starts_with("EDGEIMG-SERVER-EXIT status=signal:SIGKILL"),
        "{exit}"
    );
    let restarted = vm.expect_line("EDGEIMG-RESTARTED", boot);
    assert!(
        restarted.contains("restarts=1 last_exit=signal:SIGKILL"),
        "{restarted}"
    );
    vm.expect_line("EDGEIMG-READY model=standin", boot);
    let audit = vm.expect_line("EDGEIMG-AUDIT", boot);
    assert_default_audit(&mut vm, &audit);
    // Nothing reads the console: the terminal echoes what is typed, nothing answers it.
    // Typed once the guest is quiet, so no init or kernel line can split the echo.
    vm.type_on_console(&format!("{CONSOLE_PROBE}\n"));
    vm.expect_line(CONSOLE_PROBE, Duration::from_secs(30));

    // DHCP runs beside the server, so its line may come before or after READY.
    let net = vm.expect_line_anytime("EDGEIMG-NET", boot);
    assert_eq!(net, LEASE_LINE);
    // Through QEMU's port forward to 10.0.2.15: only answers if DHCP configured the guest.
    let report = http_get(port, "/v2/health/ready");
    let expect = [
        "200 OK",
        "args=--config /etc/edgeimg/device.toml --from-test",
        "hostname=edge-init-test",
        "CapPrm:\t0000000000000000",
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "CapAmb:\t0000000000000000",
        "NoNewPrivs:\t1",
        // init's blocked signals must not leak into the server (it would ignore SIGTERM).
        "SigBlk:\t0000000000000000",
        "/dev/vda1 /data ext4 rw,nosuid,nodev,noatime",
        "rootfs / rootfs ro,nodev",
        "data-writable",
        "tmp-writable",
    ];
    for needle in expect {
        if !report.contains(needle) {
            vm.fail(&format!("server report lacks {needle:?}:\n{report}"));
        }
    }
    // busybox `id` prints `groups=` only when there are supplementary groups.
    let id_line = format!("uid={SERVER_UID} gid={SERVER_GID}");
    if !report.lines().any(|l| l == id_line) {
        vm.fail(&format!(
            "server identity is not exactly {id_line:?}:\n{report}"
        ));
    }

    // The cable pulled and plugged back in: DHCP again, and the API answers again.
    vm.set_link(false);
    vm.expect_line("eth0: link down", Duration::from_secs(30));
    vm.set_link(true);
    let again = vm.expect_line("EDGEIMG-NET", Duration::from_secs(60));
    assert_eq!(again, LEASE_LINE);
    assert!(http_get(port, "/v2/health/ready").contains("200 OK"));

    // Ctrl-alt-del reaches PID 1 as SIGINT (init disabled CAD) and must power off cleanly.
    vm.monitor("sendkey ctrl-alt-delete");
    let off = vm.expect_line("EDGEIMG-POWEROFF", Duration::from_secs(30));
    assert!(off.starts_with("EDGEIMG-POWEROFF reason=SIGINT"), "{off}");
    assert!(
        vm.wait_exit(Duration::from_secs(30)),
        "QEMU did not exit cleanly"
    );
    let refusal = |l: &String| l.contains("EDGEIMG-ERROR cmdline edgeimg.debug_shell");
    if let Some(error) = vm
        .log
        .iter()
        .find(|l| l.contains("EDGEIMG-ERROR") && !refusal(l))
        .cloned()
    {
        vm.fail(&format!("init reported an error: {error}"));
    }
    if vm.log.iter().any(|l| l.contains(CONSOLE_ANSWER)) {
        vm.fail("a command typed on the console was run, but no shell was asked for");
    }
    for line in vm
        .log
        .iter()
        .filter(|l| l.contains("EDGEIMG-") || l.starts_with("edge-init:"))
    {
        eprintln!("console: {line}");
    }
    eprintln!("server report:\n{report}");
}

/// `init.debug_shell = true` (the recipe's `runtime.debug_shell`): the only way to a shell.
/// The machine has no network card at boot: the server must serve without one, and a card
/// plugged in later must get its driver (hotplug, by modalias) and a DHCP lease.
#[test]
fn debug_shell_runs_as_root_a_late_network_card_gets_dhcp_and_busybox_poweroff_powers_off() {
    if !support::qemu::qemu_x86_64_available() {
        eprintln!("qemu-system-x86_64 not installed: skipping the edge-init debug-shell test");
        return;
    }
    let (work, alpine, initrd) = prepare("edge-init-shell", false, true);
    let monitor = work.join("monitor.sock");
    let port = free_port();
    let mut vm = Vm::boot(&BootSpec {
        arch: Arch::X86_64,
        kernel: &alpine.kernel,
        initrd: &initrd,
        append: "console=ttyS0 panic=-1",
        disk: None,
        nic: Nic::EmptySlot,
        host_port: port,
        guest_port: 8000,
        monitor: &monitor,
    });
    vm.expect_line("EDGEIMG-READY model=standin", Duration::from_secs(90));
    let audit = vm.expect_line("EDGEIMG-AUDIT", Duration::from_secs(10));
    if !vm
        .log
        .iter()
        .any(|l| l.contains("no Ethernet interface yet"))
    {
        vm.fail("init did not say it serves without a network interface");
    }
    vm.plug_nic(port, 8000);
    let net = vm.expect_line("EDGEIMG-NET", Duration::from_secs(60));
    assert_eq!(net, LEASE_LINE);
    assert!(http_get(port, "/v2/health/ready").contains("200 OK"));
    if !(audit.contains(":sh") && audit.contains("root=ro") && audit.contains("uid=1000 ")) {
        vm.fail(&format!("the audit should show the shell: {audit}"));
    }
    vm.type_on_console(&format!("{CONSOLE_PROBE}\n"));
    vm.expect_line(CONSOLE_ANSWER, Duration::from_secs(20));
    // Arithmetic in the command, so the echo of what was typed cannot match.
    vm.type_on_console("echo shell-uid-$((40+2))-$(busybox id -u)\n");
    vm.expect_line("shell-uid-42-0", Duration::from_secs(20));
    if let Some(warning) = vm
        .log
        .iter()
        .find(|l| l.contains("job control turned off"))
        .cloned()
    {
        vm.fail(&format!(
            "the debug shell has no controlling terminal: {warning}"
        ));
    }
    // busybox `poweroff` asks PID 1 with SIGUSR2.
    vm.type_on_console("busybox poweroff\n");
    let off = vm.expect_line("EDGEIMG-POWEROFF", Duration::from_secs(30));
    assert!(off.starts_with("EDGEIMG-POWEROFF reason=SIGUSR2"), "{off}");
    assert!(
        vm.wait_exit(Duration::from_secs(30)),
        "QEMU did not exit cleanly"
    );
    if let Some(error) = vm.log.iter().find(|l| l.contains("EDGEIMG-ERROR")).cloned() {
        vm.fail(&format!("init reported an error: {error}"));
    }
}
