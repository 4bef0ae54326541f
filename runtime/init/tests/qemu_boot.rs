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
//! init is what is under test. Booted by the project's QEMU harness (`edgeimg-qemu`); without
//! QEMU, e2fsprogs or busybox-static the tests fail, naming what is missing.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use edge_config::{DataPartition, NetworkConfig};
use edgeimg_qemu::{Nic, RunningVm, ShutdownRequest};
use edgeimg_test_support::alpine::AlpineRoot;
use edgeimg_test_support::Arch;
use support::{console_log, expect_line, fail, Busybox, BOOT};

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

/// A work dir, the Alpine root and an initramfs with edge-init as /init, virtio-net,
/// virtio-blk and ext4, and the stand-in server (on the host's busybox-static, for its httpd).
fn prepare(name: &str, with_data: bool, debug_shell: bool) -> (PathBuf, AlpineRoot, PathBuf) {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&work).unwrap();
    let root = AlpineRoot::get(Arch::X86_64);
    let image = support::initramfs(
        &root,
        &["virtio_net", "virtio_blk", "ext4"],
        Busybox::HostStatic,
        STANDIN_SERVER,
        |modules| {
            // No device asks for a file system: the config lists it. The virtio drivers come
            // from their devices' modaliases.
            let listed = modules
                .into_iter()
                .filter(|m| m.ends_with("/ext4.ko.gz"))
                .collect();
            let mut init = support::init_config(listed, SERVER_UID, SERVER_GID);
            init.network = NetworkConfig {
                dhcp: true,
                interface: None,
            };
            init.data = with_data.then(|| DataPartition {
                label: Some("edge-data".to_string()),
                partuuid: Some(format!("{DISK_SIGNATURE:08x}-01")),
                fstype: "ext4".to_string(),
                mountpoint: "/data".to_string(),
            });
            init.server_args = vec!["--from-test".to_string()];
            init.debug_shell = debug_shell;
            support::device_config(init)
        },
    );
    let initrd = work.join("initramfs.cpio");
    std::fs::write(&initrd, image.into_bytes()).unwrap();
    (work, root, initrd)
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connecting to the forwarded port");
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
fn assert_default_audit(vm: &RunningVm, audit: &str) {
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
        _ => fail(
            vm,
            &format!("audit line {audit:?} is not the default {want:?}"),
        ),
    }
}

#[test]
fn boots_serves_restarts_and_powers_off_in_qemu() {
    let (work, root, initrd) = prepare("edge-init-boot", true, false);
    let disk = work.join("data.img");
    edgeimg_test_support::ext4::mbr_ext4_disk(&disk, 16, "edge-data", DISK_SIGNATURE);

    let mut vm = support::boot(
        &root,
        &initrd,
        // Asking for a shell on the command line must not open one.
        "console=ttyS0 panic=-1 edgeimg.selftest=kill-server edgeimg.debug_shell=1",
        Some(&disk),
        Nic::Plugged,
    );
    let vm = &mut vm;
    let boot = BOOT;
    let refused = expect_line(vm, "EDGEIMG-ERROR cmdline", boot);
    assert!(
        refused.contains("edgeimg.debug_shell is ignored"),
        "{refused}"
    );
    let coldplug = expect_line(vm, "edge-init: coldplug:", boot);
    for driver in ["virtio_net", "virtio_blk"] {
        if !coldplug.contains(driver) {
            fail(vm, &format!("coldplug did not load {driver}: {coldplug}"));
        }
    }
    let data = expect_line(vm, "EDGEIMG-DATA", boot);
    assert_eq!(data, "EDGEIMG-DATA device=/dev/vda1 mountpoint=/data");
    let ready = expect_line(vm, "EDGEIMG-READY", boot);
    assert!(
        ready.starts_with("EDGEIMG-READY model=standin listen=0.0.0.0:8000 ms_since_boot="),
        "{ready}"
    );
    let audit = expect_line(vm, "EDGEIMG-AUDIT", boot);
    assert_default_audit(vm, &audit);

    let exit = expect_line(vm, "EDGEIMG-SERVER-EXIT", boot);
    assert!(
        exit.starts_with("EDGEIMG-SERVER-EXIT status=signal:SIGKILL"),
        "{exit}"
    );
    let restarted = expect_line(vm, "EDGEIMG-RESTARTED", boot);
    assert!(
        restarted.contains("restarts=1 last_exit=signal:SIGKILL"),
        "{restarted}"
    );
    expect_line(vm, "EDGEIMG-READY model=standin", boot);
    let audit = expect_line(vm, "EDGEIMG-AUDIT", boot);
    assert_default_audit(vm, &audit);
    // Nothing reads the console: the terminal echoes what is typed, nothing answers it.
    // Typed once the guest is quiet, so no init or kernel line can split the echo.
    vm.write_console(&format!("{CONSOLE_PROBE}\n")).unwrap();
    expect_line(vm, CONSOLE_PROBE, Duration::from_secs(30));

    // DHCP runs beside the server, so its line may come before or after READY.
    let net = vm
        .wait_for_line("EDGEIMG-NET", true, boot)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&net[net.find("EDGEIMG-NET").unwrap()..], LEASE_LINE);
    // Through QEMU's port forward to 10.0.2.15: only answers if DHCP configured the guest.
    let report = http_get(vm.api_addr().unwrap(), "/v2/health/ready");
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
            fail(vm, &format!("server report lacks {needle:?}:\n{report}"));
        }
    }
    // busybox `id` prints `groups=` only when there are supplementary groups.
    let id_line = format!("uid={SERVER_UID} gid={SERVER_GID}");
    if !report.lines().any(|l| l == id_line) {
        fail(
            vm,
            &format!("server identity is not exactly {id_line:?}:\n{report}"),
        );
    }

    // The cable pulled and plugged back in: DHCP again, and the API answers again.
    vm.set_link(false).unwrap();
    expect_line(vm, "eth0: link down", Duration::from_secs(30));
    vm.set_link(true).unwrap();
    let again = expect_line(vm, "EDGEIMG-NET", Duration::from_secs(60));
    assert_eq!(again, LEASE_LINE);
    assert!(http_get(vm.api_addr().unwrap(), "/v2/health/ready").contains("200 OK"));

    // Ctrl-alt-del reaches PID 1 as SIGINT (init disabled CAD) and must power off cleanly.
    powered_off_cleanly(vm, ShutdownRequest::CtrlAltDelete, "SIGINT");
    let log = console_log(vm);
    let refusal = |l: &&String| l.contains("EDGEIMG-ERROR cmdline edgeimg.debug_shell");
    if let Some(error) = log
        .iter()
        .find(|l| l.contains("EDGEIMG-ERROR") && !refusal(l))
    {
        fail(vm, &format!("init reported an error: {error}"));
    }
    if log.iter().any(|l| l.contains(CONSOLE_ANSWER)) {
        fail(
            vm,
            "a command typed on the console was run, but no shell was asked for",
        );
    }
    for line in log
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
    let (_work, root, initrd) = prepare("edge-init-shell", false, true);
    let mut vm = support::boot(
        &root,
        &initrd,
        "console=ttyS0 panic=-1",
        None,
        Nic::EmptySlot,
    );
    let vm = &mut vm;
    expect_line(vm, "EDGEIMG-READY model=standin", BOOT);
    let audit = expect_line(vm, "EDGEIMG-AUDIT", Duration::from_secs(10));
    if !console_log(vm)
        .iter()
        .any(|l| l.contains("no Ethernet interface yet"))
    {
        fail(vm, "init did not say it serves without a network interface");
    }
    vm.plug_nic().unwrap();
    let net = expect_line(vm, "EDGEIMG-NET", Duration::from_secs(60));
    assert_eq!(net, LEASE_LINE);
    assert!(http_get(vm.api_addr().unwrap(), "/v2/health/ready").contains("200 OK"));
    if !(audit.contains(":sh") && audit.contains("root=ro") && audit.contains("uid=1000 ")) {
        fail(vm, &format!("the audit should show the shell: {audit}"));
    }
    vm.write_console(&format!("{CONSOLE_PROBE}\n")).unwrap();
    expect_line(vm, CONSOLE_ANSWER, Duration::from_secs(20));
    // Arithmetic in the command, so the echo of what was typed cannot match.
    vm.write_console("echo shell-uid-$((40+2))-$(busybox id -u)\n")
        .unwrap();
    expect_line(vm, "shell-uid-42-0", Duration::from_secs(20));
    let log = console_log(vm);
    if let Some(warning) = log.iter().find(|l| l.contains("job control turned off")) {
        fail(
            vm,
            &format!("the debug shell has no controlling terminal: {warning}"),
        );
    }
    // busybox `poweroff` asks PID 1 with SIGUSR2.
    powered_off_cleanly(
        vm,
        ShutdownRequest::ConsoleInput("busybox poweroff\n".into()),
        "SIGUSR2",
    );
    if let Some(error) = console_log(vm).iter().find(|l| l.contains("EDGEIMG-ERROR")) {
        fail(vm, &format!("init reported an error: {error}"));
    }
}

/// Asks for a power-off with `request`: init must say why (`reason`) and QEMU exit cleanly.
fn powered_off_cleanly(vm: &mut RunningVm, request: ShutdownRequest, reason: &str) {
    vm.shutdown(request, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let off = expect_line(vm, "EDGEIMG-POWEROFF", Duration::from_secs(1));
    assert!(
        off.starts_with(&format!("EDGEIMG-POWEROFF reason={reason}")),
        "{off}"
    );
    let status = vm.exit_status().unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "QEMU did not exit cleanly: {status:?}"
    );
}
