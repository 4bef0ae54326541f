//! `EDGEIMG_ACCEL` forces either accelerator, with no probe, and QEMU really runs with it. Its
//! own test binary: it sets the variable for the whole process.

mod common;

use std::time::Duration;

use common::{fixture_initramfs, kernel, SERVING_INIT};
use edgeimg_qemu::{Accel, Arch, Board, BootSpec, Error, Qemu, SpawnOptions};

#[test]
fn edgeimg_accel_forces_kvm_or_tcg() {
    let arch = Arch::host().expect("an x86_64 or aarch64 host");
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(arch);
    let mut spec = BootSpec::kernel(Board::generic(arch), &kernel);
    spec.initrd = Some(fixture_initramfs(arch, Some(SERVING_INIT), dir.path()));
    spec.append = "quiet".into();

    for (value, accel) in [("kvm", Accel::Kvm), ("TCG", Accel::Tcg)] {
        std::env::set_var("EDGEIMG_ACCEL", value);
        let mut vm = match Qemu::spawn(&spec, &SpawnOptions::default()) {
            Ok(vm) => vm,
            // Forced onto a KVM that cannot run this guest (no probe stops it), QEMU may abort
            // at once; its own message shows KVM was what it tried.
            Err(Error::QemuExited { stderr, .. }) if accel == Accel::Kvm => {
                assert!(stderr.to_lowercase().contains("kvm"), "{stderr}");
                continue;
            }
            Err(e) => panic!("QEMU did not start with EDGEIMG_ACCEL={value}: {e}"),
        };
        assert_eq!(vm.accel().accel, accel, "{}", vm.accel());
        assert_eq!(vm.accel().reason, format!("EDGEIMG_ACCEL={accel}"));
        // QEMU itself says which accelerator runs the guest.
        let kvm = vm.qmp("query-kvm", None).unwrap();
        assert_eq!(kvm["enabled"], accel == Accel::Kvm, "{kvm}");
        if accel == Accel::Tcg {
            vm.wait_for_ready(Duration::from_secs(90)).unwrap();
        }
        vm.kill();
    }

    std::env::set_var("EDGEIMG_ACCEL", "hvf");
    let err = Qemu::spawn(&spec, &SpawnOptions::default()).unwrap_err();
    assert!(err.to_string().contains("hvf"), "{err}");
}
