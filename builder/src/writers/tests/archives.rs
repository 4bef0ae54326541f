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

/// Each newc archive of a concatenation, as (name, data) in order.
fn newc_archives(mut bytes: &[u8]) -> Vec<Vec<(String, Vec<u8>)>> {
    use std::io::Read;
    let mut archives = vec![Vec::new()];
    while !bytes.is_empty() {
        let mut reader = cpio::newc::Reader::new(bytes).expect("a newc entry");
        if reader.entry().is_trailer() {
            bytes = reader.finish().unwrap();
            if !bytes.is_empty() {
                archives.push(Vec::new());
            }
            continue;
        }
        let name = reader.entry().name().to_string();
        let mut data = Vec::new();
        reader.read_to_end(&mut data).unwrap();
        archives.last_mut().unwrap().push((name, data));
        bytes = reader.finish().unwrap();
    }
    archives
}

/// The sample tree with two large executables, a large model, a file just under the
/// threshold, and a large file with two names.
fn tree_with_large_files() -> RootfsTree {
    use crate::writers::initramfs::LARGE_FILE;
    let mut t = sample_tree();
    let binary: Vec<u8> = (0..LARGE_FILE + 4321)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    t.add_file(p("usr/bin/edge-runtime"), binary, Meta::root(0o755, T + 6))
        .unwrap();
    let init: Vec<u8> = (0..LARGE_FILE).map(|i| (i * 11 % 241) as u8).collect();
    t.add_file(p("sbin/edge-init"), init, Meta::root(0o755, T + 9))
        .unwrap();
    let model: Vec<u8> = (0..LARGE_FILE).map(|i| (i * 13 % 239) as u8).collect();
    t.add_file(
        p("usr/share/models/big.onnx"),
        model,
        Meta::root(0o644, T + 10),
    )
    .unwrap();
    t.add_file(
        p("usr/share/model"),
        vec![3; LARGE_FILE - 1],
        Meta::root(0o644, T + 7),
    )
    .unwrap();
    t.add_file(p("lib/big"), vec![5; LARGE_FILE], Meta::root(0o644, T + 8))
        .unwrap();
    t.insert(
        p("lib/big-too"),
        Node {
            kind: NodeKind::Hardlink(p("lib/big")),
            meta: Meta::root(0o644, T + 8),
        },
    )
    .unwrap();
    t
}

#[test]
fn initramfs_puts_the_large_executables_together_and_each_other_large_file_alone_first() {
    use crate::packages::Progress;
    use crate::writers::initramfs::write_initramfs;
    let dir = tempfile::tempdir().unwrap();
    let (out, cache) = (dir.path().join("i.cpio.zst"), dir.path().join("cache"));
    let tree = tree_with_large_files();
    write_initramfs(&tree, &out, &cache, &Progress::hidden()).unwrap();

    let decoded = zstd::decode_all(std::fs::File::open(&out).unwrap()).unwrap();
    let archives = newc_archives(&decoded);
    assert_eq!(
        archives.len(),
        3,
        "the executables' archive, the model's, then the rest"
    );
    let names = |a: &[(String, Vec<u8>)]| a.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    // Their directories come with them: the kernel creates a file only in a directory that
    // exists.
    assert_eq!(
        names(&archives[0]),
        [
            "sbin",
            "sbin/edge-init",
            "usr",
            "usr/bin",
            "usr/bin/edge-runtime"
        ]
    );
    for (name, data) in &archives[0] {
        if let Some(file) = tree.file_data(&p(name)) {
            assert_eq!(data[..], file[..], "{name}");
        }
    }
    assert_eq!(
        names(&archives[1]),
        [
            "usr",
            "usr/share",
            "usr/share/models",
            "usr/share/models/big.onnx"
        ]
    );
    // The rest: everything else, the directories again (their final modes and times), the
    // file under the threshold and both names of the linked one.
    let mut rest = Vec::new();
    crate::writers::cpio::write_newc_of(
        &tree,
        |path| {
            ![
                "sbin/edge-init",
                "usr/bin/edge-runtime",
                "usr/share/models/big.onnx",
            ]
            .contains(&path.as_str())
        },
        &mut rest,
    )
    .unwrap();
    assert_eq!(newc_archives(&rest)[0], archives[2]);
    for name in ["usr/bin", "usr/share/model", "lib/big", "lib/big-too"] {
        assert!(names(&archives[2]).iter().any(|n| n == name), "{name}");
    }
}

#[test]
fn initramfs_members_are_compressed_once_and_a_bad_cached_one_is_not_used() {
    use crate::packages::Progress;
    use crate::writers::initramfs::write_initramfs;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let tree = tree_with_large_files();
    let write = |name: &str| {
        let out = dir.path().join(name);
        write_initramfs(&tree, &out, &cache, &Progress::hidden()).unwrap();
        std::fs::read(out).unwrap()
    };
    let first = write("a.zst");
    let members: Vec<_> = std::fs::read_dir(cache.join("initramfs-members"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        members.len(),
        2,
        "the executables' and the model's: {members:?}"
    );
    assert_eq!(write("b.zst"), first, "from the cache: the same bytes");

    // A member that does not decompress to its archive is compressed again and replaced.
    let before = std::fs::read(&members[0]).unwrap();
    std::fs::write(&members[0], zstd::encode_all(&b"not it"[..], 3).unwrap()).unwrap();
    assert_eq!(write("c.zst"), first);
    assert_eq!(std::fs::read(&members[0]).unwrap(), before);
}
