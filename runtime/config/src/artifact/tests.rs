use super::*;
use crate::signing::{sign_for, Digest, Sha512, SigningKey, SYSTEM_UPDATE_CONTEXT};
use crate::system::{Part, SystemConfig, UpdateManifest, FORMAT, MANIFEST, MANIFEST_SIG};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn device() -> SystemConfig {
    SystemConfig {
        version: "1.0".into(),
        board: "qemu-aarch64".into(),
        arch: "aarch64".into(),
        boot_partuuid: "boot-uuid".into(),
        root_partuuids: ["root-a".into(), "root-b".into()],
        slot_bytes: 4096,
        boot_slot_bytes: 1024,
        updates: true,
        public_key_file: None,
        max_update_bytes: 1 << 20,
        state_dir: "/data/system".into(),
        commit_deadline_secs: 180,
        golden_model: None,
        golden: None,
    }
}

fn head() -> ArtifactHead {
    ArtifactHead {
        format: FORMAT,
        name: "edge".into(),
        version: "2.0".into(),
        board: "qemu-aarch64".into(),
        arch: "aarch64".into(),
        boot_partuuid: "boot-uuid".into(),
        root_partuuids: ["root-a".into(), "root-b".into()],
    }
}

type Parts = Vec<(String, Vec<u8>)>;

fn parts() -> Parts {
    vec![
        ("root.squashfs".into(), vec![7u8; 3000]),
        ("boot/vmlinuz".into(), b"kernel".to_vec()),
        ("boot/overlays/x.dtbo".into(), b"overlay".to_vec()),
        (
            "slot-a/cmdline.txt".into(),
            b"root=PARTUUID=root-a".to_vec(),
        ),
        (
            "slot-b/cmdline.txt".into(),
            b"root=PARTUUID=root-b".to_vec(),
        ),
    ]
}

fn artifact_of(head: ArtifactHead, parts: &[(String, Vec<u8>)]) -> (Vec<u8>, UpdateManifest) {
    let borrowed: Vec<(String, &[u8])> = parts.iter().map(|(n, b)| (n.clone(), &b[..])).collect();
    let mut out = Vec::new();
    let manifest = write_artifact(&mut out, head, &borrowed, &key(1)).unwrap();
    (out, manifest)
}

fn artifact() -> Vec<u8> {
    artifact_of(head(), &parts()).0
}

/// A tar of a manifest signed with the right key and the members given: the shapes
/// `write_artifact` never makes.
fn raw(manifest: &UpdateManifest, members: &[(&str, &[u8])]) -> Vec<u8> {
    let json = serde_json::to_vec(manifest).unwrap();
    let sig = sign_for(
        SYSTEM_UPDATE_CONTEXT,
        &key(1),
        Sha512::new().chain_update(&json),
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut all: Vec<(&str, &[u8])> = vec![(MANIFEST, &json), (MANIFEST_SIG, sig.as_bytes())];
    all.extend_from_slice(members);
    for (name, bytes) in all {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, name, bytes).unwrap();
    }
    tar.into_inner().unwrap()
}

/// Reads `bytes`, returning what the sink received.
fn read(bytes: &[u8], dev: &SystemConfig) -> Result<(UpdateManifest, Parts), ArtifactError> {
    let mut got = Vec::new();
    let m = read_artifact(bytes, &key(1).verifying_key(), dev, |part, r| {
        let mut b = Vec::new();
        r.read_to_end(&mut b)?;
        got.push((part.name.clone(), b));
        Ok(())
    })?;
    Ok((m, got))
}

fn refused(bytes: &[u8], dev: &SystemConfig) -> ArtifactError {
    read(bytes, dev).unwrap_err()
}

#[test]
fn an_artifact_reads_back_part_by_part_and_is_deterministic() {
    let (bytes, written) = artifact_of(head(), &parts());
    assert_eq!(bytes, artifact(), "same inputs, same bytes");
    let (manifest, got) = read(&bytes, &device()).unwrap();
    assert_eq!(manifest, written);
    assert_eq!(manifest.version, "2.0");
    assert_eq!(got, parts());
    assert_eq!(
        manifest.parts[1],
        Part {
            name: "boot/vmlinuz".into(),
            size: 6,
            // printf kernel | sha256sum
            sha256: "6923dd1bc0460082c5d55a831908c24a282860b7f1cd6c2b79cf1bc8857c639c".into(),
        }
    );
    let mut archive = tar::Archive::new(&bytes[..]);
    for entry in archive.entries().unwrap() {
        let h = entry.unwrap().header().clone();
        assert_eq!(
            (
                h.mtime().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mode().unwrap()
            ),
            (0, 0, 0, 0o644)
        );
    }
}

#[test]
fn a_sink_that_stops_early_still_gets_every_part_checked() {
    let m = read_artifact(
        &artifact()[..],
        &key(1).verifying_key(),
        &device(),
        |_, r| {
            let mut one = [0u8; 1];
            r.read_exact(&mut one)
        },
    )
    .unwrap();
    assert_eq!(m.parts.len(), 5);
}

#[test]
fn another_key_or_a_changed_manifest_is_refused_before_any_part() {
    let mut called = false;
    let e = read_artifact(
        &artifact()[..],
        &key(2).verifying_key(),
        &device(),
        |_, _| {
            called = true;
            Ok(())
        },
    )
    .unwrap_err();
    assert!(matches!(e, ArtifactError::BadSignature), "{e}");
    assert_eq!(e.class(), ErrorClass::Unsigned);
    assert!(e.to_string().contains("system.public_key_file"));
    assert!(
        !called,
        "no part reaches the sink before the signature checks out"
    );

    let mut bytes = artifact();
    let at = bytes.windows(3).position(|w| w == b"2.0").unwrap();
    bytes[at] = b'9';
    assert!(matches!(
        refused(&bytes, &device()),
        ArtifactError::BadSignature
    ));
}

#[test]
fn a_tar_that_is_not_an_update_is_refused() {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    tar.append_data(&mut header, "model.onnx", &b"abc"[..])
        .unwrap();
    let e = refused(&tar.into_inner().unwrap(), &device());
    assert!(matches!(e, ArtifactError::NotAnUpdate { .. }), "{e}");
    assert!(e.to_string().contains("model.onnx"));
    assert!(matches!(
        refused(b"", &device()),
        ArtifactError::MissingHeader { .. }
    ));
    assert!(matches!(
        refused(&[1u8; 700], &device()),
        ArtifactError::Io(_)
    ));
}

#[test]
fn an_update_for_another_device_is_refused() {
    let other = |f: fn(&mut ArtifactHead)| {
        let mut h = head();
        f(&mut h);
        refused(&artifact_of(h, &parts()).0, &device())
    };
    let e = other(|h| h.board = "rpi4".into());
    assert_eq!(
        e.to_string(),
        "the update is for board rpi4, this device is qemu-aarch64: build it from this device's recipe"
    );
    assert_eq!(e.class(), ErrorClass::Unsuitable);
    assert!(matches!(
        other(|h| h.arch = "x86_64".into()),
        ArtifactError::Arch { .. }
    ));
    assert!(matches!(
        other(|h| h.format = 2),
        ArtifactError::Format { found: 2, .. }
    ));
    assert!(matches!(
        other(|h| h.boot_partuuid = "x".into()),
        ArtifactError::Disk { .. }
    ));
    assert!(matches!(
        other(|h| h.root_partuuids[1] = "x".into()),
        ArtifactError::Disk { .. }
    ));
}

#[test]
fn parts_larger_than_their_slots_are_refused() {
    let mut dev = device();
    dev.slot_bytes = 2999;
    let e = refused(&artifact(), &dev);
    assert!(
        matches!(
            e,
            ArtifactError::RootTooBig {
                size: 3000,
                slot_bytes: 2999
            }
        ),
        "{e}"
    );
    let mut dev = device();
    // boot/ 13 bytes + slot-a/ 20 bytes
    dev.boot_slot_bytes = 32;
    let e = refused(&artifact(), &dev);
    assert!(
        matches!(e, ArtifactError::BootTooBig { size: 33, .. }),
        "{e}"
    );
}

#[test]
fn members_out_of_order_unexpected_or_missing_are_refused() {
    let (_, m) = artifact_of(head(), &parts());
    let p = parts();
    let member = |i: usize| (p[i].0.as_str(), &p[i].1[..]);
    let all: Vec<_> = (0..5).map(member).collect();

    let mut swapped = all.clone();
    swapped.swap(1, 2);
    let e = refused(&raw(&m, &swapped), &device());
    assert!(
        matches!(&e, ArtifactError::OutOfOrder { expected, .. } if expected == "boot/vmlinuz"),
        "{e}"
    );

    let mut extra = all.clone();
    extra.push(("boot/extra", b"x"));
    let e = refused(&raw(&m, &extra), &device());
    assert!(
        matches!(&e, ArtifactError::Unexpected(n) if n == "boot/extra"),
        "{e}"
    );

    let e = refused(&raw(&m, &all[..4]), &device());
    assert!(
        matches!(&e, ArtifactError::MissingPart(n) if n == "slot-b/cmdline.txt"),
        "{e}"
    );

    let mut bad = m.clone();
    bad.parts[1].name = "boot/../escape".into();
    let e = refused(&raw(&bad, &all), &device());
    assert!(matches!(e, ArtifactError::BadPartName(_)), "{e}");

    let mut bad = m.clone();
    bad.parts.swap(0, 1);
    assert!(matches!(
        refused(&raw(&bad, &all), &device()),
        ArtifactError::RootNotFirst { .. }
    ));
}

#[test]
fn truncated_or_corrupt_parts_are_refused() {
    let bytes = artifact();
    // The cut falls inside root.squashfs's 3000 bytes (after two 512-byte-padded members).
    let e = refused(&bytes[..4096], &device());
    assert!(
        matches!(&e, ArtifactError::Size { part, .. } if part == "root.squashfs"),
        "{e}"
    );

    let (_, m) = artifact_of(head(), &parts());
    let mut corrupt = parts();
    corrupt[0].1[100] ^= 1;
    let members: Vec<_> = corrupt.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let e = refused(&raw(&m, &members), &device());
    assert!(
        matches!(&e, ArtifactError::Digest { part } if part == "root.squashfs"),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Malformed);

    let mut longer = parts();
    longer[1].1.push(b'!');
    let members: Vec<_> = longer.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let e = refused(&raw(&m, &members), &device());
    assert!(
        matches!(
            &e,
            ArtifactError::Size {
                got: 7,
                expected: 6,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_failing_sink_is_reported_as_local() {
    let e = read_artifact(
        &artifact()[..],
        &key(1).verifying_key(),
        &device(),
        |_, _| Err(std::io::Error::other("disk full")),
    )
    .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Local);
    assert!(e.to_string().contains("root.squashfs") && e.to_string().contains("disk full"));
}

#[test]
fn the_writer_refuses_what_the_reader_would() {
    let write = |parts: &[(String, &[u8])]| {
        write_artifact(Vec::new(), head(), parts, &key(1))
            .unwrap_err()
            .to_string()
    };
    assert!(write(&[("boot/x".into(), b"x")]).contains("first part"));
    assert!(
        write(&[("root.squashfs".into(), b"x"), ("etc/x".into(), b"x")])
            .contains("not a boot part")
    );
    assert!(write(&[
        ("root.squashfs".into(), b"x"),
        ("boot/x".into(), b"x"),
        ("boot/x".into(), b"x")
    ])
    .contains("twice"));
    assert_eq!(destination("slot-c/x"), None);
    assert_eq!(
        destination("slot-b/x"),
        Some(Destination::SlotBoot {
            slot: "b",
            path: "x"
        })
    );
}
