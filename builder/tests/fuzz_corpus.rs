//! The builder's fuzz targets (tests/fuzz/) over their committed corpora and crash reproducers.

#[path = "../../tests/fuzz/src/builder.rs"]
mod harness;
#[allow(dead_code)] // the seeds need only the cases' archives, not what their errors say
#[path = "packages/malicious.rs"]
mod malicious;
#[path = "../../tests/fuzz/src/replay.rs"]
mod replay;
#[allow(dead_code)]
#[path = "packages/repo.rs"]
mod repo;

use replay::replay;

#[test]
fn recipe_inputs() {
    replay("recipe", harness::recipe);
}

#[test]
fn apkindex_inputs() {
    replay("apkindex", harness::apkindex);
}

#[test]
fn apk_inputs() {
    replay("apk", harness::apk);
}

#[test]
fn model_inputs() {
    replay("model", harness::model);
}

/// Rewrites the .apk seeds: an ordinary package, each case of the malicious-archive corpus,
/// and one of each input form the apk target reads.
#[test]
#[ignore = "writes tests/fuzz/corpus/apk/; run by hand after changing the corpus"]
fn write_apk_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz/corpus/apk");
    std::fs::create_dir_all(&dir).unwrap();
    let ordinary = malicious::data_tar(|t| {
        t.symlink("etc/alias", "ok");
        t.raw(
            tar::EntryType::Link,
            "etc/same",
            "etc/ok",
            0o644,
            0,
            &[],
            &[],
        );
        let caps: &[u8] = b"\x01\x00\x00\x02\x00\x20\x00\x00";
        let xattr = [("SCHILY.xattr.security.capability", caps)];
        t.raw(
            tar::EntryType::Regular,
            "usr/bin/ping",
            "",
            0o755,
            0,
            b"\x7fELF",
            &xattr,
        );
    });
    let mut script = repo::TarBuilder::new();
    script.file(".post-install", 0o755, b"#!/bin/sh\nexit 0\n");
    let mut signature = repo::TarBuilder::new();
    signature.file(
        ".SIGN.RSA.someone@example.org-1.rsa.pub",
        0o644,
        &[0x5a; 256],
    );
    let mut seeds = vec![
        ("ordinary", seed(1, &script.cut(), None, &ordinary)),
        ("stored-gzip", seed(3, &[], None, &repo::gzip(&ordinary))),
        ("signed", seed(5, &[], Some(&signature.cut()), &ordinary)),
        (
            "whole-file",
            [&[0u8][..], &repo::gzip(b"not a tar")].concat(),
        ),
    ];
    for case in malicious::cases() {
        seeds.push((case.name, seed(1, &[], None, &case.data)));
    }
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name.replace([' ', '^', ':'], "-")), bytes).unwrap();
    }
}

/// The apk target's input: mode, control entries, signature (with mode bit 2), data.
fn seed(mode: u8, control: &[u8], signature: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    let chunk = |b: &[u8]| [&(b.len() as u16).to_le_bytes()[..], b].concat();
    let mut out = vec![mode];
    out.extend(chunk(control));
    if let Some(signature) = signature {
        out.extend(chunk(signature));
    }
    out.extend_from_slice(data);
    out
}
