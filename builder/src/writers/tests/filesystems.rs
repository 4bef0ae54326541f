//! squashfs, ext4 and FAT images.

use super::*;
use crate::writers::ext4::{write_ext4, Ext4Options};
use crate::writers::fat::{write_fat, FatOptions};
use crate::writers::squashfs::{write_squashfs, SquashfsCompression};

#[test]
fn squashfs_shows_owners_modes_links_and_extracts_identically() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("root.squashfs");
    let tree = sample_tree();
    write_squashfs(&tree, &img, SquashfsCompression::Xz).unwrap();
    let listing = tool(Command::new("unsquashfs").arg("-lln").arg(&img));
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| {
                l.ends_with(&format!("squashfs-root/{name}"))
                    || l.contains(&format!("squashfs-root/{name} -> "))
            })
            .unwrap_or_else(|| panic!("{name} not listed:\n{listing}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("etc/hostname")[..3], ["-rw-r--r--", "0/0", "5"]);
    assert_eq!(line("bin/busybox")[..2], ["-rwxr-xr-x", "0/0"]);
    assert_eq!(line("bin/ash")[..3], ["-rwxr-xr-x", "0/0", "70000"]);
    assert_eq!(line("home/edge/secret")[..2], ["-rw-------", "1000/1000"]);
    assert!(line("bin/sh").ends_with(&["->", "busybox"]));
    assert_eq!(line("tmp")[0], "drwxrwxrwt");
    assert_eq!(line("dev/console")[..3], ["crw-------", "0/0", "5,"]);
    assert_eq!(line("dev/vda")[..4], ["brw-rw----", "0/0", "254,", "3"]);
    assert!(
        listing.contains("2023-11-14 22:13"),
        "mtimes from the tree:\n{listing}"
    );

    let x = dir.path().join("x");
    tool(
        Command::new("unsquashfs")
            .arg("-q")
            .arg("-d")
            .arg(&x)
            .arg(&img)
            .args(["bin", "etc", "home"]),
    );
    for (path, node) in tree.iter() {
        if let NodeKind::File(_) | NodeKind::Hardlink(_) = &node.kind {
            let got = std::fs::read(x.join(path.as_str())).unwrap();
            assert_eq!(&got[..], &tree.file_data(path).unwrap()[..], "{path}");
        }
    }

    let again = dir.path().join("again.squashfs");
    write_squashfs(&tree, &again, SquashfsCompression::Xz).unwrap();
    assert_eq!(sha256_file(&img), sha256_file(&again));
    let z = dir.path().join("z.squashfs");
    write_squashfs(&tree, &z, SquashfsCompression::Zstd).unwrap();
    assert!(tool(Command::new("unsquashfs").arg("-s").arg(&z)).contains("zstd"));
}

fn ext4_opts(size: u64) -> Ext4Options {
    Ext4Options {
        size_bytes: size,
        label: "edge-data".into(),
        seed: "edge-test".into(),
        mtime: T,
    }
}

#[test]
fn ext4_is_clean_labelled_and_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.ext4"), dir.path().join("b.ext4"));
    let info = write_ext4(&ext4_opts(32 << 20), &a).unwrap();
    write_ext4(&ext4_opts(32 << 20), &b).unwrap();
    tool(Command::new("fsck.ext4").arg("-fn").arg(&a));
    let header = tool(Command::new("dumpe2fs").arg("-h").arg(&a));
    assert!(
        header.contains("Filesystem volume name:   edge-data"),
        "{header}"
    );
    assert!(header.contains(&info.uuid.to_string()), "{header}");
    assert!(header.contains("has_journal") && header.contains("metadata_csum"));
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 32 << 20);
    assert_eq!(sha256_file(&a), sha256_file(&b));
    let root = tool(Command::new("debugfs").args(["-R", "stat /"]).arg(&a));
    assert!(root.contains("User:     0   Group:     0"), "{root}");

    // A build dated the epoch (no SOURCE_DATE_EPOCH) too: two writes a second apart agree.
    let (c, d) = (dir.path().join("c.ext4"), dir.path().join("d.ext4"));
    let epoch = Ext4Options {
        mtime: 0,
        ..ext4_opts(8 << 20)
    };
    write_ext4(&epoch, &c).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write_ext4(&epoch, &d).unwrap();
    assert_eq!(sha256_file(&c), sha256_file(&d));
    std::fs::remove_file(c).unwrap();
    std::fs::remove_file(d).unwrap();

    let err = write_ext4(&ext4_opts(1000), &dir.path().join("bad.ext4")).unwrap_err();
    assert!(err.to_string().contains("multiple of 4096"), "{err}");
    assert_eq!(dir_names(dir.path()), ["a.ext4", "b.ext4"]);
}

fn fat_opts(size: u64) -> FatOptions {
    FatOptions {
        size_bytes: size,
        label: "boot".into(),
        volume_id: 0x1234_abcd,
    }
}

#[test]
fn fat_is_clean_and_mtools_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    for (name, size, fat) in [
        ("small.vfat", 8 << 20, "FAT16"),
        ("big.vfat", 64 << 20, "FAT32"),
    ] {
        let img = dir.path().join(name);
        write_fat(&boot_tree(), &fat_opts(size), &img).unwrap();
        let fsck = tool(Command::new("fsck.vfat").arg("-n").arg(&img));
        assert!(
            !fsck.contains("differ") && !fsck.contains("Dirty"),
            "{fsck}"
        );
        let info = tool(Command::new("minfo").arg("-i").arg(&img).arg("::"));
        assert!(info.contains(&format!("disk type=\"{fat}")), "{info}");
        assert!(info.contains("disk label=\"BOOT "), "{info}");
        let listing = tool(
            Command::new("mdir")
                .args(["-/", "-b", "-i"])
                .arg(&img)
                .arg("::/"),
        );
        for f in [
            "::/config.txt",
            "::/Image",
            "::/overlays/disable-bt.dtbo",
            "::/EFI/BOOT/BOOTAA64.EFI",
        ] {
            assert!(listing.lines().any(|l| l == f), "{f} missing:\n{listing}");
        }
        let config = tool(
            Command::new("mtype")
                .arg("-i")
                .arg(&img)
                .arg("::/config.txt"),
        );
        assert_eq!(config, "arm_64bit=1\nkernel=Image\n");
        let x = dir.path().join("Image.out");
        tool(
            Command::new("mcopy")
                .arg("-n")
                .arg("-i")
                .arg(&img)
                .arg("::/Image")
                .arg(&x),
        );
        assert_eq!(std::fs::read(&x).unwrap(), vec![0xa5; 300_000]);
        std::fs::remove_file(&x).unwrap();
        let dates = tool(Command::new("mdir").arg("-i").arg(&img).arg("::/"));
        assert!(dates.contains("2023-11-14  22:13"), "{dates}");
    }
    let again = dir.path().join("again.vfat");
    write_fat(&boot_tree(), &fat_opts(8 << 20), &again).unwrap();
    assert_eq!(
        sha256_file(&again),
        sha256_file(&dir.path().join("small.vfat"))
    );
}

#[test]
fn fat_refuses_symlinks_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_fat(
        &sample_tree(),
        &fat_opts(8 << 20),
        &dir.path().join("boot.vfat"),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("bin/sh"), "{err:#}");
    assert!(
        dir_names(dir.path()).is_empty(),
        "{:?}",
        dir_names(dir.path())
    );
}
