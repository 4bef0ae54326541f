//! `edgeimg flash` end to end, through the real binary: file targets, the guards, bmaps from
//! bmaptool and for bmaptool. Disk targets go through the same code; the system disk is
//! used only to prove it is refused.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use edgeimg::writers::bmap::write_bmap;

const MIB: u64 = 1 << 20;

fn edgeimg(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeimg"))
        .arg("flash")
        .args(args.iter().map(|a| a.as_ref()))
        .stdin(Stdio::null())
        .output()
        .expect("run edgeimg")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "edgeimg flash failed: {}\n{}",
        o.status,
        stderr(o)
    );
}

/// Refused with a message containing each of `want`.
fn assert_refused(o: &Output, want: &[&str]) {
    assert!(!o.status.success(), "expected a refusal:\n{}", stderr(o));
    let err = stderr(o);
    for w in want {
        assert!(err.contains(w), "message lacks {w:?}:\n{err}");
    }
}

/// A 32 MiB sparse disk image with data (a pattern that depends on the offset, so misplaced
/// blocks show) in a few ranges, one crossing a 4 MiB chunk boundary, one at the very end.
fn sparse_image(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let f = File::create(&path).unwrap();
    f.set_len(32 * MIB).unwrap();
    for (at, len) in [
        (0, 70_000),
        (4 * MIB - 12_288, 20_000),
        (17 * MIB, MIB + 3),
        (32 * MIB - 4096, 4096),
    ] {
        let data: Vec<u8> = (at..at + len)
            .map(|i| (i * 7 + i / 4093) as u8 | 1)
            .collect();
        f.write_all_at(&data, at).unwrap();
    }
    f.sync_all().unwrap();
    path
}

fn with_ext(p: &Path, ext: &str) -> PathBuf {
    p.with_extension(ext)
}

fn dirty_file(path: &Path, len: u64) {
    std::fs::write(path, vec![0x55; len as usize]).unwrap();
}

#[test]
fn flashes_the_mapped_ranges_to_a_file_and_verifies_them() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    let bmap = write_bmap(&img, &with_ext(&img, "bmap")).unwrap();
    let target = dir.path().join("card.img");
    dirty_file(&target, 40 * MIB);
    let out = edgeimg(&[&"--file", &"--yes", &img, &target]);
    assert_ok(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("verified"), "{said}");
    let mapped: u64 = bmap
        .ranges
        .iter()
        .map(|r| {
            let b = bmap.byte_range(r);
            b.end - b.start
        })
        .sum();
    assert!(mapped < 3 * MIB, "the image is sparse: {mapped}");
    // A fresh sparse file of the image's size: byte-identical, unmapped ranges read as
    // zeros, and only the mapped ranges take space.
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&img).unwrap()
    );
    let allocated = std::fs::metadata(&target).unwrap().blocks() * 512;
    assert!(
        allocated < 8 * MIB,
        "target is not sparse: {allocated} bytes allocated"
    );
    assert!(
        stderr(&out).is_empty(),
        "quiet without a terminal: {}",
        stderr(&out)
    );
}

#[test]
fn finds_image_dot_bmap_and_creates_a_missing_target() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    write_bmap(&img, &dir.path().join("edge.img.bmap")).unwrap();
    let target = dir.path().join("new.img");
    let out = edgeimg(&[&"--file", &"-y", &img, &target]);
    assert_ok(&out);
    assert!(!stderr(&out).contains("no bmap"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&img).unwrap()
    );
}

#[test]
fn a_tampered_image_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    write_bmap(&img, &with_ext(&img, "bmap")).unwrap();
    let f = OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&[0], 17 * MIB + 12_345).unwrap();
    let target = dir.path().join("card.img");
    dirty_file(&target, 40 * MIB);
    let out = edgeimg(&[&"--file", &"--yes", &img, &target]);
    assert_refused(
        &out,
        &["differ from the bmap's sha256", "nothing was written"],
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        vec![0x55; 40 * MIB as usize]
    );
    let fresh = dir.path().join("fresh.img");
    assert_refused(
        &edgeimg(&[&"--file", &"--yes", &img, &fresh]),
        &["nothing was written"],
    );
    assert!(!fresh.exists());
}

#[test]
fn a_corrupt_or_foreign_bmap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    let bmap_path = with_ext(&img, "bmap");
    write_bmap(&img, &bmap_path).unwrap();
    let text = std::fs::read_to_string(&bmap_path).unwrap();
    let at = text.find("chksum=\"").unwrap() + 8;
    let flipped = if &text[at..at + 1] == "0" { "1" } else { "0" };
    let bad = dir.path().join("bad.bmap");
    std::fs::write(&bad, format!("{}{flipped}{}", &text[..at], &text[at + 1..])).unwrap();
    let target = dir.path().join("t.img");
    assert_refused(
        &edgeimg(&[&"--file", &"--yes", &"--bmap", &bad, &img, &target]),
        &["bad.bmap", "corrupt"],
    );
    // A valid bmap made for another image.
    let other = dir.path().join("other.img");
    File::create(&other).unwrap().set_len(8 * MIB).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&other)
        .unwrap()
        .write_all_at(b"x", 0)
        .unwrap();
    let other_bmap = dir.path().join("other.bmap");
    write_bmap(&other, &other_bmap).unwrap();
    assert_refused(
        &edgeimg(&[&"--file", &"--yes", &"--bmap", &other_bmap, &img, &target]),
        &["belongs to another image"],
    );
    assert!(!target.exists());
}

#[test]
fn without_a_bmap_it_writes_everything_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    let target = dir.path().join("card.img");
    dirty_file(&target, 4 * MIB);
    let out = edgeimg(&[&"--file", &"--yes", &img, &target]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("warning: no bmap found"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("edge.img.bmap"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&img).unwrap()
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("wrote 32.0 MiB of 32.0 MiB"), "{said}");

    // --no-bmap ignores one that exists, without a warning.
    write_bmap(&img, &with_ext(&img, "bmap")).unwrap();
    let out = edgeimg(&[&"--file", &"--yes", &"--no-bmap", &img, &target]);
    assert_ok(&out);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote 32.0 MiB"));
}

#[test]
fn a_regular_file_needs_file_and_other_kinds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    let target = dir.path().join("card.img");
    dirty_file(&target, MIB);
    assert_refused(
        &edgeimg(&[&"--yes", &"--force", &img, &target]),
        &["is a regular file, not a disk", "pass --file"],
    );
    assert_eq!(std::fs::read(&target).unwrap(), vec![0x55; MIB as usize]);
    assert_refused(
        &edgeimg(&[&"--yes", &img, &dir.path().join("missing")]),
        &["does not exist", "--file"],
    );
    assert_refused(
        &edgeimg(&[&"--yes", &"--file", &img, &dir.path()]),
        &["is a folder", "neither a block device nor"],
    );
    assert_refused(
        &edgeimg(&[&"--yes", &"--file", &img, &"/dev/null"]),
        &["character device"],
    );
    assert_refused(
        &edgeimg(&[&"--yes", &"--file", &img, &img]),
        &["is the image being flashed"],
    );
}

#[test]
fn without_a_terminal_it_needs_yes() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    let target = dir.path().join("card.img");
    let out = edgeimg(&[&"--file", &img, &target]);
    assert_refused(&out, &["pass --yes"]);
    assert!(!target.exists());
}

#[test]
fn a_compressed_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("edge.img.gz");
    std::fs::write(&img, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).unwrap();
    assert_refused(
        &edgeimg(&[&"--file", &"--yes", &img, &dir.path().join("t.img")]),
        &["gzip-compressed", "decompress it first"],
    );
}

/// The whole disk holding `/`, from mountinfo and sysfs as the kernel shows them.
fn system_disk() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let devnum = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .and_then(|l| l.split(' ').nth(2))
        .expect("/ in mountinfo")
        .to_string();
    let node = std::fs::canonicalize(format!("/sys/dev/block/{devnum}"))
        .unwrap_or_else(|e| panic!("/ is on {devnum}, which is not a block device ({e}); this test needs a machine whose root is on a disk"));
    let disk = if node.join("partition").exists() {
        node.parent().unwrap().to_path_buf()
    } else {
        node
    };
    let dev = Path::new("/dev").join(disk.file_name().unwrap());
    assert!(dev.exists(), "{} missing", dev.display());
    dev
}

#[test]
fn the_system_disk_is_refused_even_with_force_and_yes() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    write_bmap(&img, &with_ext(&img, "bmap")).unwrap();
    // A second safety net: the image fails its bmap check, so even a broken guard could
    // not get as far as writing.
    OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .write_all_at(&[0], 100)
        .unwrap();
    let disk = system_disk();
    let out = edgeimg(&[&"--force", &"--yes", &img, &disk]);
    assert_refused(&out, &["root file system", "--force does not override"]);
    // Named through a link, as /dev/disk/by-id/... names it.
    let link = dir.path().join("by-id-link");
    std::os::unix::fs::symlink(&disk, &link).unwrap();
    let out = edgeimg(&[&"--force", &"--yes", &"--file", &img, &link]);
    assert_refused(&out, &["root file system"]);
}

fn bmaptool(args: &[&dyn AsRef<std::ffi::OsStr>]) {
    let out = Command::new("bmaptool")
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("bmaptool (Debian's bmap-tools, installed by tests/setup.sh)");
    assert!(
        out.status.success(),
        "bmaptool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn accepts_a_bmap_bmaptool_created() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    let theirs = dir.path().join("theirs.bmap");
    bmaptool(&[&"create", &"-o", &theirs, &img]);
    let target = dir.path().join("card.img");
    let out = edgeimg(&[&"--file", &"--yes", &"--bmap", &theirs, &img, &target]);
    assert_ok(&out);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&img).unwrap()
    );
}

#[test]
fn bmaptool_copy_accepts_our_bmap() {
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_image(dir.path(), "edge.img");
    let ours = with_ext(&img, "bmap");
    write_bmap(&img, &ours).unwrap();
    let copy = dir.path().join("copy.img");
    bmaptool(&[&"copy", &"--bmap", &ours, &img, &copy]);
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&img).unwrap());
}

/// A loop device over `backing`, detached on drop.
struct Loop(PathBuf);

impl Loop {
    fn attach(backing: &Path) -> Loop {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(backing)
            .output()
            .expect("losetup (util-linux) runs");
        assert!(
            out.status.success(),
            "losetup -f --show failed (this test needs loop devices, as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// Writes a partition table (an `sfdisk` script) onto a disk image.
fn partition(disk: &Path, script: &str) {
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", "--no-reread"])
        .arg(disk)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk (fdisk) runs");
    std::io::Write::write_all(&mut sfdisk.stdin.take().unwrap(), script.as_bytes()).unwrap();
    assert!(
        sfdisk.wait().unwrap().success(),
        "sfdisk {}",
        disk.display()
    );
}

/// `sfdisk --dump` of a disk: its partition table, or `None` when it has none.
fn partition_table(disk: &Path) -> Option<String> {
    let out = Command::new("sfdisk")
        .arg("--dump")
        .arg(disk)
        .output()
        .expect("sfdisk runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A flash killed half way, as a pulled card or a power cut would stop it, on a real block
/// device (a loop device over a file that held a partitioned card): the old partition table
/// is gone and the new one was never written, so nothing takes the card for bootable.
#[test]
fn a_flash_killed_half_way_leaves_no_partition_table() {
    const SIZE: u64 = 256 * MIB;
    let dir = tempfile::tempdir().unwrap();
    // The new image: a partition table, then data everywhere (no bmap: it is written whole).
    let image = dir.path().join("new.img");
    let f = File::create(&image).unwrap();
    f.write_all_at(&vec![0xa5; SIZE as usize], 0).unwrap();
    drop(f);
    partition(&image, "label: dos\n,64MiB,c\n,,83\n");
    // The card: an old, partitioned one.
    let backing = dir.path().join("card.img");
    std::fs::write(&backing, vec![0x11; SIZE as usize]).unwrap();
    partition(&backing, "label: gpt\n,,L\n");
    let card = Loop::attach(&backing);
    assert!(
        partition_table(&card.0).is_some(),
        "the old card has a table"
    );

    let mut flash = Command::new(env!("CARGO_BIN_EXE_edgeimg"))
        .args(["flash", "--yes", "--force"])
        .arg(&image)
        .arg(&card.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once data past the first MiB reached the card.
    let backing_file = File::open(&backing).unwrap();
    let mut byte = [0u8; 1];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        backing_file.read_exact_at(&mut byte, 8 * MIB).unwrap();
        if byte[0] == 0xa5 {
            break;
        }
        assert!(
            flash.try_wait().unwrap().is_none(),
            "the flash ended before any data showed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no data reached the card"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    flash.kill().unwrap();
    flash.wait().unwrap();
    Command::new("blockdev")
        .arg("--flushbufs")
        .arg(&card.0)
        .status()
        .unwrap();

    let mut head = vec![0u8; MIB as usize];
    File::open(&card.0)
        .unwrap()
        .read_exact_at(&mut head, 0)
        .unwrap();
    let mut tail = [0u8; 1];
    backing_file.read_exact_at(&mut tail, SIZE - MIB).unwrap();
    assert_ne!(
        tail[0], 0xa5,
        "the flash finished before it was killed; nothing was tested"
    );
    assert!(head.iter().all(|&b| b == 0), "the first MiB is zeros");
    assert_eq!(partition_table(&card.0), None, "no partition table");
}
