//! Without QEMU on PATH, spawning says how to install it. Its own test binary: it changes
//! PATH for the whole process.

use edgeimg_qemu::{Board, BootSpec, Error, Qemu, SpawnOptions};

#[test]
fn missing_qemu_gives_the_install_hint() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("kernel");
    std::fs::write(&kernel, b"k").unwrap();
    std::env::set_var("PATH", dir.path());
    let err = Qemu::spawn(
        &BootSpec::kernel(Board::QemuX86_64, &kernel),
        &SpawnOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::QemuNotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("apt-get install -y --no-install-recommends qemu-system-x86 qemu-system-arm"),
        "{err}"
    );
}
