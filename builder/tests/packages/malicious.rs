//! The malicious-archive corpus: data tars that try to write outside the rootfs tree, through a
//! symlink, to a device, or to make the builder allocate what the archive only claims. The
//! packages test installs each and checks the refusal; the fuzz corpus is seeded with them.

use super::repo::TarBuilder;

pub struct Case {
    pub name: &'static str,
    /// The finished data tar: a harmless `etc/ok`, then the attack.
    pub data: Vec<u8>,
    /// The entry the error must name (quoted, as in the message).
    pub entry: &'static str,
    /// What the error must say about it.
    pub why: &'static str,
}

/// A data tar with a harmless directory and file, then whatever `attack` appends.
pub fn data_tar(attack: impl FnOnce(&mut TarBuilder)) -> Vec<u8> {
    let mut tar = TarBuilder::new();
    tar.dir("etc", 0o755);
    tar.file("etc/ok", 0o644, b"fine");
    attack(&mut tar);
    tar.finish()
}

pub fn cases() -> Vec<Case> {
    use tar::EntryType::*;
    let case = |name, attack: &dyn Fn(&mut TarBuilder), entry, why| Case {
        name,
        data: data_tar(attack),
        entry,
        why,
    };
    let huge = (1u64 << 62).to_string();
    vec![
        case(
            "dotdot",
            &|t| t.file("etc/../../x", 0o644, b"x"),
            "etc/../../x",
            "climbs out of the image root",
        ),
        case(
            "absolute",
            &|t| t.file("/etc/shadow", 0o644, b"x"),
            "/etc/shadow",
            "is absolute",
        ),
        case(
            "file through a symlink",
            &|t| {
                t.symlink("escape", "/");
                t.file("escape/etc/passwd", 0o644, b"x");
            },
            "escape/etc/passwd",
            "/escape is a symlink, and writing through a symlink could land anywhere",
        ),
        case(
            "directory through a relative symlink",
            &|t| {
                t.symlink("etc/up", "../../..");
                t.dir("etc/up/root", 0o755);
            },
            "etc/up/root/",
            "/etc/up is a symlink",
        ),
        case(
            "hardlink out",
            &|t| t.raw(Link, "etc/link", "../../etc/shadow", 0o644, 0, &[], &[]),
            "etc/link",
            "hardlink target \"../../etc/shadow\" is outside the image",
        ),
        case(
            "hardlink to an absolute path",
            &|t| t.raw(Link, "etc/link", "/etc/shadow", 0o644, 0, &[], &[]),
            "etc/link",
            "hardlink target \"/etc/shadow\" is outside the image",
        ),
        case(
            "hardlink through a symlink",
            &|t| {
                t.symlink("escape", "/");
                t.raw(Link, "etc/link", "escape/etc/shadow", 0o644, 0, &[], &[]);
            },
            "etc/link",
            "not a regular file already in the image",
        ),
        case(
            "hardlink to nothing",
            &|t| t.raw(Link, "etc/link", "etc/nothing", 0o644, 0, &[], &[]),
            "etc/link",
            "not a regular file already in the image",
        ),
        case(
            "hardlink over its own target",
            &|t| t.raw(Link, "etc/ok", "etc/ok", 0o644, 0, &[], &[]),
            "etc/ok",
            "hardlink /etc/ok names itself",
        ),
        case(
            "block device",
            &|t| t.raw(Block, "dev/sda", "", 0o600, 0, &[], &[]),
            "dev/sda",
            "device nodes are not allowed in packages",
        ),
        case(
            "char device",
            &|t| t.raw(Char, "dev/mem", "", 0o600, 0, &[], &[]),
            "dev/mem",
            "device nodes are not allowed in packages",
        ),
        case(
            "fifo",
            &|t| t.raw(Fifo, "run/pipe", "", 0o600, 0, &[], &[]),
            "run/pipe",
            "FIFOs are not allowed",
        ),
        case(
            "sparse file of 2^62 bytes",
            &|t| t.sparse("etc/sparse", 1 << 62),
            "etc/sparse",
            "unsupported tar entry type GNUSparse",
        ),
        case(
            "header size larger than the data",
            &|t| t.lying_file("etc/big", 1 << 20, b"short"),
            "etc/big",
            "its header claims 1048576 bytes but the archive ends after",
        ),
        case(
            "header size 2^62",
            &|t| t.lying_file("etc/huge", 1 << 62, b"short"),
            "etc/huge",
            "its header claims 4611686018427387904 bytes",
        ),
        case(
            "pax size 2^62",
            &|t| {
                t.raw(
                    Regular,
                    "etc/pax",
                    "",
                    0o644,
                    0,
                    b"short",
                    &[("size", huge.as_bytes())],
                )
            },
            "etc/pax",
            "its header claims 4611686018427387904 bytes",
        ),
        case(
            "header size u64::MAX",
            &|t| t.lying_file("etc/max", u64::MAX, b"short"),
            "etc/ok",
            "the data stream is not a valid tar after entry",
        ),
    ]
}
