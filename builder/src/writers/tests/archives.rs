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

/// The sample tree with a large binary, a file just under the threshold, and a large file
/// with two names.
fn tree_with_large_files() -> RootfsTree {
    use crate::writers::initramfs::LARGE_FILE;
    let mut t = sample_tree();
    let binary: Vec<u8> = (0..LARGE_FILE + 4321)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    t.add_file(p("usr/bin/edge-runtime"), binary, Meta::root(0o755, T + 6))
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
fn initramfs_puts_each_large_file_first_in_an_archive_of_its_own() {
    use crate::packages::Progress;
    use crate::writers::initramfs::write_initramfs;
    let dir = tempfile::tempdir().unwrap();
    let (out, cache) = (dir.path().join("i.cpio.zst"), dir.path().join("cache"));
    let tree = tree_with_large_files();
    write_initramfs(&tree, &out, &cache, &Progress::hidden()).unwrap();

    let decoded = zstd::decode_all(std::fs::File::open(&out).unwrap()).unwrap();
    let archives = newc_archives(&decoded);
    assert_eq!(archives.len(), 2, "the binary's archive, then the rest");
    let names = |a: &[(String, Vec<u8>)]| a.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    // Its directories come with it: the kernel creates a file only in a directory that exists.
    assert_eq!(
        names(&archives[0]),
        ["usr", "usr/bin", "usr/bin/edge-runtime"]
    );
    assert_eq!(
        archives[0][2].1,
        tree.file_data(&p("usr/bin/edge-runtime")).unwrap()[..]
    );
    // The rest: everything else, the directories again (their final modes and times), the
    // file under the threshold and both names of the linked one.
    let mut rest = Vec::new();
    write_newc_of_all_but(&tree, "usr/bin/edge-runtime", &mut rest);
    assert_eq!(newc_archives(&rest)[0], archives[1]);
    for name in ["usr/bin", "usr/share/model", "lib/big", "lib/big-too"] {
        assert!(names(&archives[1]).iter().any(|n| n == name), "{name}");
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
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(write("b.zst"), first, "from the cache: the same bytes");

    // A member that does not decompress to its archive is compressed again and replaced.
    std::fs::write(&members[0], zstd::encode_all(&b"not it"[..], 3).unwrap()).unwrap();
    assert_eq!(write("c.zst"), first);
    let repaired = zstd::decode_all(std::fs::File::open(&members[0]).unwrap()).unwrap();
    assert_eq!(newc_archives(&repaired)[0][2].0, "usr/bin/edge-runtime");
}

/// The newc archive of `tree` without `skip`, as the writer's own selection makes it.
fn write_newc_of_all_but(tree: &RootfsTree, skip: &str, out: &mut Vec<u8>) {
    crate::writers::cpio::write_newc_of(tree, |path| path.as_str() != skip, out).unwrap();
}
