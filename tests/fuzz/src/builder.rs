//! The builder's hostile inputs: recipe text, APKINDEX text, .apk files and ONNX models. Each
//! function takes arbitrary bytes, must not panic, and asserts what a user relies on. Shared by
//! the fuzz targets and by `builder/tests/fuzz_corpus.rs`, which replays the corpus in CI.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use edgeimg::model::{freeze_model, inspect_model, Dim};
use edgeimg::packages::{self, version, ApkIndex, Dependency, Keyring};
use edgeimg::plan::{Overrides, Plan};
use edgeimg::recipe::{LoadedRecipe, RecipeError};
use edgeimg::rootfs::{NodeKind, RootPath, RootfsTree};

use crate::repo::{gzip, TestPackage};

/// Recipe text parses, or the error names the file and a line of the text; the same for the
/// plan made from it.
pub fn recipe(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let result = LoadedRecipe::parse(path, text.to_string())
        .and_then(|loaded| Plan::new(&loaded, &Overrides::default()).map(drop));
    match result {
        Ok(()) => {}
        Err(RecipeError::Invalid { location, .. }) => {
            let line: usize = location
                .strip_prefix("fuzz.toml:")
                .and_then(|rest| rest.split(':').next())
                .and_then(|line| line.parse().ok())
                .unwrap_or_else(|| panic!("error location {location:?} names no line"));
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&line),
                "{location}: the text has {lines} lines"
            );
        }
        Err(other) => panic!("a recipe given as text failed with {other}"),
    }
}

/// APKINDEX text: a parsed entry has a name and version, its dependencies survive being
/// written back (the installed db on the device is written from them), and valid versions
/// compare as a total order (the resolver picks the newest by it).
pub fn apkindex(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(index) = ApkIndex::parse(&text) else {
        return;
    };
    for entry in &index.entries {
        assert!(
            !entry.name.is_empty() && !entry.version.is_empty(),
            "{entry:?}"
        );
        let deps = [
            &entry.depends,
            &entry.provides,
            &entry.install_if,
            &entry.replaces,
        ];
        for dep in deps.into_iter().flatten() {
            let written = dep.to_string();
            assert_eq!(
                Dependency::parse(&written).as_ref(),
                Ok(dep),
                "{dep:?} written as {written:?}"
            );
        }
    }
    let versions: Vec<&str> = index
        .entries
        .iter()
        .map(|e| e.version.as_str())
        .filter(|v| version::is_valid(v))
        .collect();
    for a in &versions {
        assert_eq!(version::compare(a, a), std::cmp::Ordering::Equal, "{a}");
        for b in &versions {
            assert_eq!(
                version::compare(a, b),
                version::compare(b, a).reverse(),
                "{a} vs {b}"
            );
        }
    }
}

/// The name the harness gives every package; each refusal must name it.
const PACKAGE: &str = "fuzz-1.0-r0";

/// An .apk file into a rootfs tree. The first byte picks the form of the rest:
/// bit 0 clear: the whole .apk file as it is (it will not match the index checksum);
/// bit 0 set: `[u16 LE n][n bytes: control tar entries after .PKGINFO]` then, with bit 2 set,
/// `[u16 LE m][m bytes: signature tar]`, then the data stream: a tar to gzip, or with bit 1
/// set the stored gzip bytes themselves. Such a package passes the checksum and datahash, so
/// what the archive says reaches the unpacker. Unless bit 3 is set, the harness fixes each tar
/// header's checksum first.
///
/// Whatever happens, nothing in the tree is outside the root or reached through a symlink, a
/// hardlink names a regular file in the tree, no device node appears, and a refusal names the
/// package.
pub fn apk(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let (apk, entry) = if mode & 1 == 0 {
        let entry = format!("P:fuzz\nV:1.0-r0\nC:Q1{}=\n", "A".repeat(27));
        (rest.to_vec(), entry)
    } else {
        let fix = mode & 8 == 0;
        let tar = |bytes: &[u8]| {
            let mut bytes = bytes.to_vec();
            if fix {
                fix_tar_checksums(&mut bytes);
            }
            bytes
        };
        let control_extra = tar(take_chunk(&mut rest));
        let signature = (mode & 4 != 0).then(|| gzip(&tar(take_chunk(&mut rest))));
        let mut package = TestPackage::new("fuzz", "1.0-r0", "", tar(rest));
        package.control_extra = control_extra;
        if mode & 2 != 0 {
            package.data_gz = Some(rest.to_vec());
        }
        package.build_with_signature(|_| signature.unwrap_or_default())
    };
    let index = ApkIndex::parse(&entry).expect("the harness writes a valid index entry");
    // Alpine's keys, parsed once: parsing them is most of the time a small input takes.
    static KEYRING: OnceLock<Keyring> = OnceLock::new();
    let keyring = KEYRING.get_or_init(Keyring::builtin);
    let mut tree = RootfsTree::new(0);
    let result = packages::unpack_apk(&apk, &index.entries[0], keyring, &mut tree);
    if let Err(e) = result {
        let message = format!("{e:#}");
        assert!(
            message.contains(PACKAGE),
            "the error names no package: {message}"
        );
    }
    check_tree(&tree);
}

/// Rewrites the checksum of each tar header, found by walking the entry sizes, so mutations
/// reach the unpacker instead of nearly all failing tar's header check.
fn fix_tar_checksums(tar: &mut [u8]) {
    let mut at = 0usize;
    while let Some(block) = at.checked_add(512).and_then(|end| tar.get_mut(at..end)) {
        let mut header = tar::Header::new_old();
        header.as_mut_bytes().copy_from_slice(block);
        header.set_cksum();
        block.copy_from_slice(header.as_bytes());
        let body = header
            .entry_size()
            .unwrap_or(0)
            .div_ceil(512)
            .saturating_mul(512);
        let Some(next) = usize::try_from(body)
            .ok()
            .and_then(|b| (at + 512).checked_add(b))
        else {
            return;
        };
        at = next;
    }
}

/// `[u16 LE length][that many bytes]` from the front of `rest` (shorter if `rest` is).
fn take_chunk<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let (len, tail) = match rest {
        [a, b, tail @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), tail),
        _ => (0, &[][..]),
    };
    let (chunk, tail) = tail.split_at(len.min(tail.len()));
    *rest = tail;
    chunk
}

/// The rootfs invariant: every path is a normalised path inside the root, below directories
/// only (never through a symlink), a hardlink names a regular file in the tree, and packages
/// brought no device nodes or FIFOs.
pub fn check_tree(tree: &RootfsTree) {
    for (path, node) in tree.iter() {
        let normalised = RootPath::from_archive(path.as_str());
        assert_eq!(normalised.as_ref(), Ok(path), "{path} is not normalised");
        for ancestor in path.ancestors() {
            let kind = tree.get(&ancestor).map(|n| &n.kind);
            assert_eq!(kind, Some(&NodeKind::Dir), "{path} lies below {ancestor}");
        }
        match &node.kind {
            NodeKind::Hardlink(target) => assert!(
                matches!(tree.get(target).map(|n| &n.kind), Some(NodeKind::File(_))),
                "hardlink {path} names {target}, not a regular file in the tree"
            ),
            NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. } | NodeKind::Fifo => {
                panic!("{path}: a package made {:?}", node.kind)
            }
            NodeKind::Dir | NodeKind::File(_) | NodeKind::Symlink(_) => {}
        }
    }
}

/// Model bytes: inspection and freezing succeed or fail with an error, never a panic; a frozen
/// model reads back with every input fixed to the shape it was given.
pub fn model(data: &[u8]) {
    let Ok(info) = inspect_model(data) else {
        return;
    };
    let _ = info.to_string();
    // The shapes a recipe would give: the model's own sizes, 1 where it leaves a dim open.
    let shapes: BTreeMap<String, Vec<i64>> = info
        .inputs
        .iter()
        .map(|input| {
            let dims = input.dims.as_deref().unwrap_or(&[Dim::Unknown]);
            let sizes = dims.iter().map(|d| d.fixed().unwrap_or(1)).collect();
            (input.name.clone(), sizes)
        })
        .collect();
    let Ok((frozen, frozen_info)) = freeze_model(data, &shapes) else {
        return;
    };
    let reread = inspect_model(&frozen).expect("a frozen model reads back");
    assert_eq!(reread, frozen_info);
    for input in &frozen_info.inputs {
        assert_eq!(
            input.fixed_shape().as_ref(),
            shapes.get(&input.name),
            "input {input}"
        );
    }
}
