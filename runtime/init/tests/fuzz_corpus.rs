//! edge-init's fuzz targets (tests/fuzz/) over their committed corpora and crash reproducers.

#[path = "../../../tests/fuzz/src/init.rs"]
mod harness;
#[path = "../../../tests/fuzz/src/replay.rs"]
mod replay;

#[test]
fn dhcp_replies() {
    replay::replay("dhcp", harness::dhcp);
}

#[test]
fn block_device_starts() {
    replay::replay("probe", harness::probe);
}

#[test]
fn kernel_command_lines() {
    replay::replay("cmdline", harness::cmdline);
}

/// Rewrites the seeds: a DHCP offer as QEMU's slirp sends it (whole, and as options behind the
/// harness's header), block-device starts made by the real tools (sfdisk's MBR and GPT,
/// mke2fs's ext4, mkfs.vfat's FAT32) and kernel command lines of each boot kind.
#[test]
#[ignore = "writes tests/fuzz/corpus/{dhcp,probe,cmdline}/; run by hand after changing them"]
fn write_seeds() {
    use std::process::Command;
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };

    let mut offer = vec![0u8; 236];
    offer[0] = 2;
    offer[1] = 1;
    offer[2] = 6;
    offer[4..8].copy_from_slice(&0x1234_abcd_u32.to_be_bytes());
    offer[16..20].copy_from_slice(&[10, 0, 2, 15]);
    offer[28..34].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    offer.extend_from_slice(&[99, 130, 83, 99]);
    let options: &[u8] = &[
        53, 1, 2, 54, 4, 10, 0, 2, 2, 51, 4, 0, 1, 0x51, 0x80, 0, 0, 1, 4, 255, 255, 255, 0, 3, 4,
        10, 0, 2, 2, 6, 8, 10, 0, 2, 3, 1, 1, 1, 1, 255,
    ];
    offer.extend_from_slice(options);
    write("dhcp", "slirp-offer", &[&[0u8][..], &offer].concat());
    let mut ack = offer.clone();
    ack[242] = 5;
    write("dhcp", "slirp-ack", &[&[0u8][..], &ack].concat());
    let mut options_only = vec![1u8];
    options_only.extend_from_slice(&offer[..240]);
    options_only.extend_from_slice(options);
    write("dhcp", "options-behind-the-header", &options_only);

    let dir = std::env::temp_dir().join(format!("edge-init-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let start = |path: &std::path::Path| std::fs::read(path).unwrap()[..4096].to_vec();
    for (name, label, partn) in [("mbr", "dos", 2u32), ("gpt", "gpt", 2)] {
        let disk = dir.join(name);
        std::fs::write(&disk, vec![0u8; 8 << 20]).unwrap();
        let table = format!("label: {label}\n,2MiB\n,2MiB\n");
        let mut sfdisk = Command::new("sfdisk");
        sfdisk
            .arg("--quiet")
            .arg(&disk)
            .stdin(std::process::Stdio::piped());
        let mut child = sfdisk.spawn().expect("sfdisk (fdisk)");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), table.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
        write(
            "probe",
            &format!("{name}-partition-{partn}"),
            &[&partn.to_le_bytes()[..], &start(&disk)].concat(),
        );
    }
    let ext4 = dir.join("ext4");
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "edge-data"])
        .arg(&ext4)
        .arg("4M"));
    write(
        "probe",
        "ext4-edge-data",
        &[&[1, 0, 0, 0][..], &start(&ext4)].concat(),
    );
    let fat = dir.join("fat");
    std::fs::write(&fat, vec![0u8; 36 << 20]).unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-n", "EDGEBOOT"])
        .arg(&fat));
    write(
        "probe",
        "fat32-edgeboot",
        &[&[1, 0, 0, 0][..], &start(&fat)].concat(),
    );

    for (name, line) in [
        ("qemu-initramfs", "console=ttyS0 panic=-1 edgeimg.selftest=kill-server edgeimg.poweroff_after_ready=1\n"),
        ("pi-disk", "console=serial0,115200 console=tty1 root=PARTUUID=6c2a0f13-02 rootfstype=squashfs ro rootwait"),
        ("refused-and-unknown", "edgeimg.debug_shell edgeimg.colour=red edgeimg.poweroff_after_ready=0 root="),
    ] {
        write("cmdline", name, line.as_bytes());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
