//! Real QEMU boots of Alpine's kernel with a tiny initramfs, on both architectures.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{fixture_initramfs, kernel, SERVING_INIT};
use edgeimg_qemu::{
    Arch, Board, BootSpec, Disk, Error, Qemu, RunningVm, ShutdownRequest, SpawnOptions,
};

/// Generous for TCG on a loaded 2-core machine; a healthy boot takes a few seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

fn boot(arch: Arch, init: Option<&str>, forward: bool) -> (RunningVm, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(arch);
    let mut spec = BootSpec::kernel(Board::generic(arch), kernel);
    spec.initrd = Some(fixture_initramfs(arch, init, dir.path()));
    spec.append = "quiet".into();
    spec.forward_port = forward.then_some(8000);
    let vm = Qemu::spawn(&spec, &SpawnOptions::default()).expect("QEMU starts");
    (vm, dir)
}

/// Read the fixture server's line through the forwarded port; the guest may still be
/// starting its listener, and user networking accepts host connections before it does.
fn read_forwarded_line(vm: &RunningVm) -> String {
    let addr = vm.api_addr().expect("a forwarded port");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && !line.is_empty() {
                return line.trim().to_string();
            }
        }
        assert!(Instant::now() < deadline, "nothing answered on {addr}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn serves_forwards_and_powers_off(arch: Arch, request: ShutdownRequest) {
    let (mut vm, _dir) = boot(arch, Some(SERVING_INIT), true);
    let ready = vm.wait_for_ready(READY_TIMEOUT).unwrap();
    assert_eq!(ready.line.model, "fixture");
    assert_eq!(ready.line.listen.port(), 8000);
    assert!(ready.line.ms_since_boot > 0, "{ready:?}");
    eprintln!(
        "{arch}: ready after {:?} on the host, {} ms in the guest ({}: {})",
        ready.host_boot_to_ready,
        ready.line.ms_since_boot,
        vm.accel().accel,
        vm.accel().reason
    );

    assert_eq!(read_forwarded_line(&vm), format!("edgeimg-fixture {arch}"));

    let took = vm.shutdown(request, Duration::from_secs(30)).unwrap();
    eprintln!("{arch}: powered off in {took:?}");
    let log = std::fs::read_to_string(vm.console_log_path()).unwrap();
    assert!(log.contains("EDGEIMG-POWEROFF"), "{log}");
}

#[test]
fn x86_64_boots_serves_forwards_and_powers_off_on_ctrl_alt_delete() {
    serves_forwards_and_powers_off(Arch::X86_64, ShutdownRequest::CtrlAltDelete);
}

#[test]
fn aarch64_boots_serves_forwards_and_powers_off_on_console_request() {
    serves_forwards_and_powers_off(
        Arch::Aarch64,
        ShutdownRequest::ConsoleInput("poweroff\n".into()),
    );
}

/// A guest ready before it hears ctrl-alt-delete, as the Pi 3 is (QEMU's raspi3b binds its USB
/// keyboard after READY under TCG): PID 1 ignores the first press's SIGINT, and the harness
/// must press again until the guest powers off.
#[test]
fn ctrl_alt_delete_is_pressed_again_until_the_guest_hears_it() {
    let init = r#"
trap '' INT
mount -t proc proc /proc
echo 0 > /proc/sys/kernel/ctrl-alt-del
ms=$(awk '{ printf "%d", $1 * 1000 }' /proc/uptime)
echo "EDGEIMG-READY model=fixture listen=0.0.0.0:8000 ms_since_boot=$ms"
sleep 3
trap 'echo EDGEIMG-POWEROFF; sync; poweroff -f' INT
echo "fixture: ctrl-alt-delete handled from now on"
while true; do sleep 1; done
"#;
    let (mut vm, _dir) = boot(Arch::X86_64, Some(init), false);
    vm.wait_for_ready(READY_TIMEOUT).unwrap();
    let took = vm
        .shutdown(ShutdownRequest::CtrlAltDelete, Duration::from_secs(30))
        .unwrap();
    let log = std::fs::read_to_string(vm.console_log_path()).unwrap();
    let handled = log.find("fixture: ctrl-alt-delete handled").expect(&log);
    assert!(log[handled..].contains("EDGEIMG-POWEROFF"), "{log}");
    eprintln!("powered off {took:?} after the first press");
}

fn panic_fails_fast_with_the_console_tail(arch: Arch) {
    let (mut vm, _dir) = boot(arch, None, false);
    match vm.wait_for_ready(READY_TIMEOUT) {
        Err(Error::KernelPanic { line, console_tail }) => {
            assert!(line.contains("Kernel panic"), "{line}");
            assert!(console_tail.contains("Kernel panic"), "{console_tail}");
            assert!(console_tail.lines().count() > 1, "{console_tail}");
        }
        other => panic!("expected a kernel panic, got {other:?}"),
    }
}

#[test]
fn x86_64_kernel_panic_fails_fast() {
    panic_fails_fast_with_the_console_tail(Arch::X86_64);
}

#[test]
fn aarch64_kernel_panic_fails_fast() {
    panic_fails_fast_with_the_console_tail(Arch::Aarch64);
}

#[test]
fn a_guest_that_never_gets_ready_times_out_with_the_tail() {
    let init = "echo fixture: waiting forever\nwhile true; do sleep 1; done\n";
    let (mut vm, _dir) = boot(Arch::X86_64, Some(init), false);
    let started = Instant::now();
    // Long enough for the script to start, short enough to prove the wait is bounded.
    match vm.wait_for_ready(Duration::from_secs(20)) {
        Err(Error::ReadyTimeout { console_tail, .. }) => {
            assert!(
                console_tail.contains("fixture: waiting forever"),
                "{console_tail}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(25));
}

#[test]
fn a_guest_error_line_fails_the_boot() {
    let init =
        "echo 'EDGEIMG-ERROR model=m reason=model file missing'\nwhile true; do sleep 1; done\n";
    let (mut vm, _dir) = boot(Arch::Aarch64, Some(init), false);
    match vm.wait_for_ready(READY_TIMEOUT) {
        Err(Error::GuestError { line, console_tail }) => {
            assert!(line.contains("model file missing"), "{line}");
            assert!(console_tail.contains("EDGEIMG-ERROR"), "{console_tail}");
        }
        other => panic!("expected the guest's error, got {other:?}"),
    }
}

#[test]
fn qemu_exiting_early_is_reported_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    // Not a kernel: QEMU refuses to load it and exits.
    let bogus = dir.path().join("not-a-kernel");
    std::fs::write(&bogus, b"definitely not a kernel").unwrap();
    let spec = BootSpec::kernel(Board::generic(Arch::X86_64), &bogus);
    let err = match Qemu::spawn(&spec, &SpawnOptions::default()) {
        Ok(mut vm) => vm.wait_for_ready(READY_TIMEOUT).unwrap_err(),
        Err(e) => e,
    };
    assert!(matches!(err, Error::QemuExited { .. }), "{err}");
    assert!(err.to_string().contains("QEMU said"), "{err}");
}

#[test]
fn dropping_the_vm_kills_qemu() {
    let (vm, _dir) = boot(Arch::X86_64, Some("while true; do sleep 1; done\n"), false);
    let pid = vm.pid();
    drop(vm);
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(!alive, "QEMU {pid} outlived its handle");
}

/// A disk without a kernel boots through UEFI: the firmware runs from read-only code with a
/// writable copy of its variables, finds nothing bootable on the empty disk and says so.
fn uefi_firmware_runs_for_a_disk_boot(arch: Arch) {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("empty.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let spec = BootSpec::disk(Board::generic(arch), Disk::new(&disk).snapshot());
    let mut vm = Qemu::spawn(&spec, &SpawnOptions::default()).unwrap();
    let line = vm
        .wait_for_line("BdsDxe", true, Duration::from_secs(120))
        .unwrap();
    assert!(line.contains("UEFI Misc Device"), "{line}");
}

#[test]
fn x86_64_uefi_firmware_runs_for_a_disk_boot() {
    uefi_firmware_runs_for_a_disk_boot(Arch::X86_64);
}

#[test]
fn aarch64_uefi_firmware_runs_for_a_disk_boot() {
    uefi_firmware_runs_for_a_disk_boot(Arch::Aarch64);
}

/// The accelerator the harness picks is one a Linux guest really boots under. On a host whose
/// KVM hangs Linux (this project's CI machines: firmware runs, the kernel prints nothing) the
/// probe must say TCG; on a host with a working KVM it says KVM. Either way the guest must then
/// reach READY, and the verdict is remembered so the next choice costs nothing.
#[test]
fn the_accelerator_chosen_is_one_a_linux_guest_boots_under() {
    use edgeimg_qemu::accel::{decide, VerdictStore};
    use edgeimg_qemu::{find_qemu, Accel};

    let arch = Arch::host().expect("an x86_64 or aarch64 host");
    let profile = Board::generic(arch).profile();
    let qemu = find_qemu(arch).unwrap();
    let kernel = kernel(arch);
    let verdicts = tempfile::tempdir().unwrap();
    let store = VerdictStore::at(verdicts.path());

    let choice = decide(&profile, &qemu, Some(&kernel), None, &store);
    eprintln!("{arch}: {choice}");
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm_opens && choice.accel == Accel::Tcg {
        assert!(
            choice.reason.contains("under KVM"),
            "a TCG choice on a host with /dev/kvm names what the KVM probe saw: {choice}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let mut spec = BootSpec::kernel(Board::generic(arch), &kernel);
    spec.initrd = Some(fixture_initramfs(arch, Some(SERVING_INIT), dir.path()));
    spec.append = "quiet".into();
    let opts = SpawnOptions {
        accel: Some(choice.accel),
        ..Default::default()
    };
    let mut vm = Qemu::spawn(&spec, &opts).expect("QEMU starts");
    let ready = vm.wait_for_ready(READY_TIMEOUT);
    vm.kill();
    ready.unwrap_or_else(|e| panic!("the guest did not boot under {choice}: {e}"));

    // A decisive probe is remembered: the same question again is answered from the store.
    let again_started = Instant::now();
    let again = decide(&profile, &qemu, Some(&kernel), None, &store);
    assert_eq!(again.accel, choice.accel, "{again}");
    if !choice.reason.contains("inconclusive") {
        assert!(again_started.elapsed() < Duration::from_secs(2), "{again}");
        let fresh = VerdictStore::at(verdicts.path());
        let from_disk = decide(&profile, &qemu, Some(&kernel), None, &fresh);
        assert_eq!(from_disk.accel, choice.accel, "{from_disk}");
        assert!(
            std::fs::read_dir(verdicts.path()).unwrap().count() == 1,
            "one verdict file per host, QEMU and kernel"
        );
    }
}

/// A KVM that hangs Linux shows as a guest that never prints. Reproduced with the real QEMU and
/// kernel, started but never let run (`-S`, under TCG so it starts on any host): the probe
/// must give up at its deadline, pick TCG, say why, and remember it.
#[test]
fn a_guest_silent_under_kvm_sends_the_harness_to_tcg_once() {
    use edgeimg_qemu::accel::{VerdictStore, PROBE_DEADLINE};
    use edgeimg_qemu::find_qemu;
    use std::os::unix::fs::PermissionsExt;

    let arch = Arch::host().expect("an x86_64 or aarch64 host");
    let profile = Board::generic(arch).profile();
    let kernel = kernel(arch);
    let dir = tempfile::tempdir().unwrap();
    let hanging_qemu = dir.path().join("qemu-that-hangs-under-kvm");
    let script = format!(
        "#!/bin/sh\n# the probe's arguments, with KVM swapped for a guest that never runs\n\
         for a in \"$@\"; do shift; case \"$a\" in kvm) a=tcg;; host) a=max;; esac; set -- \"$@\" \"$a\"; done\n\
         exec {} \"$@\" -S\n",
        find_qemu(arch).unwrap().display()
    );
    std::fs::write(&hanging_qemu, script).unwrap();
    std::fs::set_permissions(&hanging_qemu, std::fs::Permissions::from_mode(0o755)).unwrap();

    let store = VerdictStore::at(&dir.path().join("verdicts"));
    let started = Instant::now();
    let verdict = store.verdict_for_kernel(&profile, &hanging_qemu, &kernel);
    let took = started.elapsed();
    assert!(!verdict.kvm_runs_linux, "{verdict:?}");
    assert!(verdict.reason.contains("printed nothing"), "{verdict:?}");
    assert!(took >= PROBE_DEADLINE, "gave up after {took:?}");
    assert!(took < PROBE_DEADLINE + Duration::from_secs(5), "{took:?}");

    let started = Instant::now();
    let again = VerdictStore::at(&dir.path().join("verdicts")).verdict_for_kernel(
        &profile,
        &hanging_qemu,
        &kernel,
    );
    assert!(!again.kvm_runs_linux, "{again:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the verdict was not remembered"
    );
}
