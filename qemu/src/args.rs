//! The QEMU command line for a boot spec on a board.

use std::path::{Path, PathBuf};

use crate::accel::Accel;
use crate::board::{DiskInterface, MachineProfile};
use crate::spec::{BootSpec, ConsoleMode, Nic};

/// Files and ports chosen for one QEMU run.
#[derive(Debug, Clone)]
pub(crate) struct RunPaths {
    pub qmp_socket: PathBuf,
    /// Writable UEFI variable store (firmware boots only).
    pub uefi_vars: Option<PathBuf>,
    /// Host port the guest's `forward_port` is forwarded to.
    pub host_port: Option<u16>,
}

/// QEMU option values are comma-separated, so a comma in a path is written twice.
fn opt_path(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

pub(crate) fn qemu_args(
    spec: &BootSpec,
    profile: &MachineProfile,
    accel: Accel,
    console: ConsoleMode,
    run: &RunPaths,
) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));

    push(&["-nodefaults", "-no-user-config", "-display", "none"]);
    // A guest reboot ends QEMU instead of restarting the same `-kernel`: the harness boots
    // again from what the disk then names, as firmware reads its boot partition afresh.
    push(&["-no-reboot"]);
    push(&["-M", profile.machine, "-accel", accel.as_qemu()]);
    match (accel, profile.tcg_cpu) {
        (Accel::Kvm, _) => push(&["-cpu", "host"]),
        (Accel::Tcg, Some(cpu)) => push(&["-cpu", cpu]),
        (Accel::Tcg, None) => {}
    }
    let memory = spec.memory_mb.unwrap_or(profile.memory_mb).to_string();
    push(&["-m", &memory]);
    if spec.cpus > 1 {
        push(&["-smp", &spec.cpus.to_string()]);
    }

    // The console UART is QEMU's stdio; UARTs before it are left unconnected.
    match console {
        ConsoleMode::Interactive => {
            push(&["-chardev", "stdio,id=con,mux=on,signal=off"]);
            push(&["-mon", "chardev=con,mode=readline"]);
        }
        ConsoleMode::Headless | ConsoleMode::Tee => push(&["-chardev", "stdio,id=con,signal=off"]),
    }
    for _ in 0..profile.console_serial_index {
        push(&["-serial", "null"]);
    }
    push(&["-serial", "chardev:con"]);
    let qmp = format!("unix:{},server=on,wait=off", opt_path(&run.qmp_socket));
    push(&["-qmp", &qmp]);

    if let Some(kernel) = &spec.kernel {
        push(&["-kernel", &kernel.to_string_lossy()]);
        if let Some(initrd) = &spec.initrd {
            push(&["-initrd", &initrd.to_string_lossy()]);
        }
        if let Some(dtb) = &spec.dtb {
            push(&["-dtb", &dtb.to_string_lossy()]);
        }
        push(&["-append", &kernel_cmdline(&spec.append, profile)]);
    } else if let (Some(uefi), Some(vars)) = (&profile.uefi, &run.uefi_vars) {
        let code = format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            opt_path(&uefi.code)
        );
        let vars = format!("if=pflash,format=raw,unit=1,file={}", opt_path(vars));
        push(&["-drive", &code, "-drive", &vars]);
    }

    let interface = match profile.disk_interface {
        DiskInterface::Virtio => "virtio",
        DiskInterface::Sd => "sd",
    };
    for (n, disk) in spec.disks.iter().enumerate() {
        // The id names the drive for QMP (e.g. write throttling: `RunningVm::throttle_writes`).
        let mut drive = format!(
            "file={},if={interface},format={}",
            opt_path(&disk.path),
            disk.format.as_qemu()
        );
        if disk.snapshot {
            drive.push_str(",snapshot=on");
        }
        drive.push_str(&format!(",id=disk{n}"));
        push(&["-drive", &drive]);
    }

    if let Some(keyboard) = profile.keyboard {
        push(&["-device", keyboard]);
    }
    match (profile.nic, spec.nic) {
        (Some(nic), Nic::Plugged) => {
            let netdev = netdev(spec, run);
            push(&["-netdev", &netdev, "-device", &nic_device(nic)]);
        }
        (Some(_), Nic::EmptySlot) => push(&["-device", EMPTY_SLOT]),
        (None, _) => {}
    }
    args
}

/// The PCIe slot a [`Nic::EmptySlot`] boot leaves empty.
pub(crate) const EMPTY_SLOT: &str = "pcie-root-port,id=slot0,chassis=1,slot=1";
/// The network card's QEMU id, for `set_link`.
pub(crate) const NIC_ID: &str = "nic0";

/// The `-netdev` value: QEMU's user network with the spec's port forwarded.
pub(crate) fn netdev(spec: &BootSpec, run: &RunPaths) -> String {
    let mut netdev = "user,id=net0".to_string();
    if let (Some(guest), Some(host)) = (spec.forward_port, run.host_port) {
        netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    netdev
}

/// The `-device` value of the card `model` on that network.
pub(crate) fn nic_device(model: &str) -> String {
    format!("{model},netdev=net0,id={NIC_ID}")
}

/// The spec's command line with `console=` for the board's console UART added if missing.
pub(crate) fn kernel_cmdline(append: &str, profile: &MachineProfile) -> String {
    if append.split_whitespace().any(|a| a.starts_with("console=")) {
        append.trim().to_string()
    } else {
        format!("console={} {}", profile.kernel_console, append.trim())
            .trim()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Board;
    use crate::spec::Disk;

    fn run() -> RunPaths {
        RunPaths {
            qmp_socket: "/tmp/x/qmp.sock".into(),
            uefi_vars: Some("/tmp/x/vars.fd".into()),
            host_port: Some(40123),
        }
    }

    fn joined(spec: &BootSpec, accel: Accel) -> String {
        let profile = spec.board.profile();
        qemu_args(spec, &profile, accel, ConsoleMode::Headless, &run()).join(" ")
    }

    #[test]
    fn aarch64_kernel_boot_with_forwarding() {
        let mut spec = BootSpec::kernel(Board::QemuAarch64, "/k/Image");
        spec.initrd = Some("/k/initrd".into());
        spec.append = "quiet".into();
        spec.forward_port = Some(8000);
        let line = joined(&spec, Accel::Tcg);
        assert!(
            line.contains("-M virt -accel tcg -cpu cortex-a57 -m 256"),
            "{line}"
        );
        assert!(line.contains("-append console=ttyAMA0 quiet"), "{line}");
        assert!(line.contains("hostfwd=tcp:127.0.0.1:40123-:8000"), "{line}");
        assert!(
            line.contains("-device virtio-net-pci,netdev=net0"),
            "{line}"
        );
    }

    #[test]
    fn an_empty_slot_boots_without_a_card_and_only_pcie_boards_have_one() {
        let mut spec = BootSpec::kernel(Board::QemuX86_64, "/k/bzImage");
        spec.forward_port = Some(8000);
        spec.nic = Nic::EmptySlot;
        let line = joined(&spec, Accel::Tcg);
        assert!(line.contains(&format!("-device {EMPTY_SLOT}")), "{line}");
        assert!(!line.contains("-netdev"), "{line}");
        // What plug_nic adds later: the network and port forward a plugged card would have had.
        assert_eq!(
            netdev(&spec, &run()),
            "user,id=net0,hostfwd=tcp:127.0.0.1:40123-:8000"
        );
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("Image");
        std::fs::write(&kernel, b"k").unwrap();
        let mut pi = BootSpec::kernel(Board::Raspi3b, kernel);
        pi.nic = Nic::EmptySlot;
        let error = pi.validate(&Board::Raspi3b.profile()).unwrap_err();
        assert!(error.to_string().contains("no PCIe slot"), "{error}");
    }

    #[test]
    fn raspi3b_console_is_the_second_uart_and_disk_is_the_sd_card() {
        let mut spec = BootSpec::kernel(Board::Raspi3b, "/k/Image");
        spec.disks.push(Disk::new("/i/pi.img"));
        let line = joined(&spec, Accel::Tcg);
        assert!(line.contains("-serial null -serial chardev:con"), "{line}");
        assert!(
            line.contains("-drive file=/i/pi.img,if=sd,format=raw"),
            "{line}"
        );
        assert!(line.contains("-device usb-net,netdev=net0"), "{line}");
        assert!(line.contains("-device usb-kbd"), "{line}");
        assert!(line.contains("console=ttyS1,115200"), "{line}");
    }

    #[test]
    fn raspi4b_console_is_the_first_uart_and_it_has_no_network() {
        let mut spec = BootSpec::kernel(Board::Raspi4b, "/k/Image");
        spec.disks.push(Disk::new("/i/pi.img"));
        let line = joined(&spec, Accel::Tcg);
        assert!(line.contains("-M raspi4b -accel tcg -m 2048"), "{line}");
        assert!(line.contains("-serial chardev:con"), "{line}");
        assert!(!line.contains("-serial null"), "{line}");
        assert!(line.contains("console=ttyAMA0,115200"), "{line}");
        assert!(line.contains("if=sd,format=raw"), "{line}");
        assert!(!line.contains("-netdev"), "{line}");
        let dir = tempfile::tempdir().unwrap();
        let (kernel, card) = (dir.path().join("Image"), dir.path().join("pi.img"));
        std::fs::write(&kernel, b"k").unwrap();
        std::fs::write(&card, b"c").unwrap();
        let mut with_port = BootSpec::kernel(Board::Raspi4b, kernel);
        with_port.disks.push(Disk::new(card));
        with_port.forward_port = Some(8000);
        let error = with_port.validate(&Board::Raspi4b.profile()).unwrap_err();
        assert!(error.to_string().contains("no network"), "{error}");
    }

    #[test]
    fn disk_boot_uses_uefi_with_writable_vars_and_kvm_uses_host_cpu() {
        let spec = BootSpec::disk(Board::QemuX86_64, Disk::new("/i/a,b.qcow2").snapshot());
        let line = joined(&spec, Accel::Kvm);
        assert!(line.contains("-cpu host"), "{line}");
        assert!(
            line.contains("readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd"),
            "{line}"
        );
        assert!(line.contains("unit=1,file=/tmp/x/vars.fd"), "{line}");
        assert!(
            line.contains("file=/i/a,,b.qcow2,if=virtio,format=qcow2,snapshot=on"),
            "{line}"
        );
        assert!(!line.contains("-kernel"), "{line}");
    }

    #[test]
    fn an_explicit_console_is_kept() {
        let profile = Board::QemuX86_64.profile();
        assert_eq!(
            kernel_cmdline("console=tty0 ro", &profile),
            "console=tty0 ro"
        );
        assert_eq!(kernel_cmdline("", &profile), "console=ttyS0");
    }
}
