//! cpio initramfs.

use super::*;
use crate::writers::compression::Compression;
use crate::writers::cpio::{write_cpio, write_newc};

#[test]
fn cpio_lists_with_owners_modes_links_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("initramfs.cpio.gz");
    write_cpio(&sample_tree(), &out, Compression::Gzip).unwrap();
    let listing = sh(&format!(
        "gzip -dc {} | cpio -itv --numeric-uid-gid 2>/dev/null",
        out.display()
    ));
    let line = |name: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")) || l.contains(&format!(" {name} -> ")))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listing}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("etc/hostname")[..4], ["-rw-r--r--", "1", "0", "0"]);
    assert_eq!(
        line("bin/busybox")[..4],
        ["-rwxr-xr-x", "2", "0", "0"],
        "hardlinked: nlink 2"
    );
    assert_eq!(line("bin/ash")[1], "2");
    assert_eq!(
        line("home/edge/secret")[..4],
        ["-rw-------", "1", "1000", "1000"]
    );
    assert!(line("bin/sh").ends_with(&["bin/sh", "->", "busybox"]));
    assert_eq!(line("tmp")[0], "drwxrwxrwt");
    assert_eq!(line("dev/console")[0], "crw-------");
    assert_eq!(line("dev/console")[4], "5,");
    assert_eq!(line("dev/vda")[0], "brw-rw----");

    // Extracting gives the data once, on both names.
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    sh(&format!(
        "cd {} && gzip -dc {} | cpio -id --no-absolute-filenames 'bin/*' 'etc/*' 2>/dev/null",
        x.display(),
        out.display()
    ));
    assert_eq!(
        std::fs::read(x.join("bin/ash")).unwrap(),
        vec![0x7f; 70_000]
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(x.join("bin/ash")).unwrap().ino(),
        std::fs::metadata(x.join("bin/busybox")).unwrap().ino()
    );
    assert_eq!(std::fs::read(x.join("etc/hostname")).unwrap(), b"edge\n");
}

#[test]
fn cpio_is_deterministic_and_zstd_decodes_to_the_same_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.gz"), dir.path().join("b.gz"));
    write_cpio(&sample_tree(), &a, Compression::Gzip).unwrap();
    write_cpio(&sample_tree(), &b, Compression::Gzip).unwrap();
    assert_eq!(sha256_file(&a), sha256_file(&b));

    let z = dir.path().join("i.zst");
    write_cpio(&sample_tree(), &z, Compression::Zstd).unwrap();
    let mut plain = Vec::new();
    write_newc(&sample_tree(), &mut plain).unwrap();
    let decoded = zstd::decode_all(std::fs::File::open(&z).unwrap()).unwrap();
    assert_eq!(decoded, plain);
    assert_eq!(&plain[..6], b"070701");
}
