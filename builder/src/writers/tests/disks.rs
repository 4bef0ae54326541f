//! Disk images, block maps and qcow2.

use std::path::PathBuf;

use super::*;
use crate::writers::bmap::{write_bmap, Bmap};
use crate::writers::disk::{
    write_disk, DiskLayout, DiskSpec, PartitionSpec, PartitionTable, PartitionType, MIB,
};
use crate::writers::ext4::{write_ext4, Ext4Options};
use crate::writers::fat::{write_fat, FatOptions};
use crate::writers::qcow2::write_qcow2;
use crate::writers::squashfs::{write_squashfs, SquashfsCompression};

struct Parts {
    _dir: tempfile::TempDir,
    boot: PathBuf,
    root: PathBuf,
    data: PathBuf,
}

fn partition_images() -> Parts {
    let dir = tempfile::tempdir().unwrap();
    let (boot, root, data) = (
        dir.path().join("boot.vfat"),
        dir.path().join("root.sqfs"),
        dir.path().join("data.ext4"),
    );
    write_fat(
        &boot_tree(),
        &FatOptions {
            size_bytes: 16 << 20,
            label: "BOOT".into(),
            volume_id: 7,
        },
        &boot,
    )
    .unwrap();
    write_squashfs(&sample_tree(), &root, SquashfsCompression::Gzip).unwrap();
    write_ext4(
        &Ext4Options {
            size_bytes: 16 << 20,
            label: "edge-data".into(),
            seed: "t".into(),
            mtime: T,
        },
        &data,
    )
    .unwrap();
    Parts {
        _dir: dir,
        boot,
        root,
        data,
    }
}

fn spec(table: PartitionTable, parts: &Parts) -> DiskSpec {
    let part = |name: &str, kind, image: &PathBuf, size| PartitionSpec {
        name: name.into(),
        kind,
        image: image.clone(),
        size_bytes: size,
        bootable: false,
    };
    DiskSpec {
        table,
        seed: "edge-test".into(),
        partitions: vec![
            PartitionSpec {
                bootable: true,
                ..part(
                    "boot",
                    if table == PartitionTable::Gpt {
                        PartitionType::EfiSystem
                    } else {
                        PartitionType::Fat
                    },
                    &parts.boot,
                    None,
                )
            },
            part("root", PartitionType::Linux, &parts.root, Some(8 * MIB)),
            part("data", PartitionType::Linux, &parts.data, None),
        ],
    }
}

fn sfdisk_json(img: &Path) -> serde_json::Value {
    let out = tool(Command::new("sfdisk").arg("-J").arg(img));
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["partitiontable"].clone()
}

fn check_partitions_hold_images(img: &Path, layout: &DiskLayout, parts: &Parts) {
    let disk = std::fs::read(img).unwrap();
    for (p, src) in layout
        .partitions
        .iter()
        .zip([&parts.boot, &parts.root, &parts.data])
    {
        let want = std::fs::read(src).unwrap();
        let at = p.offset_bytes as usize;
        assert_eq!(
            &disk[at..at + want.len()],
            &want[..],
            "partition {}",
            p.number
        );
    }
}

#[test]
fn mbr_disk_matches_sfdisk_and_bmaptool_copies_it() {
    let parts = partition_images();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("edge.img");
    let layout = write_disk(&spec(PartitionTable::Mbr, &parts), &img).unwrap();
    assert_eq!(layout.partitions[0].offset_bytes, MIB);
    assert_eq!(layout.size_bytes, MIB + 16 * MIB + 8 * MIB + 16 * MIB);
    let t = sfdisk_json(&img);
    assert_eq!(t["label"], "dos");
    assert_eq!(t["id"], format!("0x{}", layout.disk_id));
    let ps = t["partitions"].as_array().unwrap();
    assert_eq!(ps.len(), 3);
    for (got, want) in ps.iter().zip(&layout.partitions) {
        assert_eq!(got["start"].as_u64().unwrap() * 512, want.offset_bytes);
        assert_eq!(got["size"].as_u64().unwrap() * 512, want.size_bytes);
    }
    assert_eq!(
        (ps[0]["type"].as_str(), ps[0]["bootable"].as_bool()),
        (Some("c"), Some(true))
    );
    assert_eq!(ps[1]["type"], "83");
    assert_eq!(
        layout.partitions[1].partuuid,
        format!("{}-02", layout.disk_id)
    );
    tool(Command::new("fdisk").arg("-l").arg(&img));
    check_partitions_hold_images(&img, &layout, &parts);
    let data_part = dir.path().join("p3");
    sh(&format!(
        "dd if={} of={} bs=1M skip=25 count=16 status=none",
        img.display(),
        data_part.display()
    ));
    tool(Command::new("fsck.ext4").arg("-fn").arg(&data_part));

    // Sparse on disk, mapped by the bmap, and bmaptool accepts our bmap.
    let bmap_path = dir.path().join("edge.bmap");
    let bmap = write_bmap(&img, &bmap_path).unwrap();
    assert!(
        bmap.mapped_blocks() < bmap.blocks_count(),
        "holes are left out"
    );
    let target = dir.path().join("target.img");
    std::fs::write(&target, vec![0x55; layout.size_bytes as usize]).unwrap();
    tool(
        Command::new("bmaptool")
            .arg("copy")
            .arg("--bmap")
            .arg(&bmap_path)
            .arg(&img)
            .arg(&target),
    );
    let copied = std::fs::read(&target).unwrap();
    let original = std::fs::read(&img).unwrap();
    for r in &bmap.ranges {
        let b = bmap.byte_range(r);
        assert_eq!(
            copied[b.start as usize..b.end as usize],
            original[b.start as usize..b.end as usize]
        );
    }
    // The copy over a dirty target is still a valid disk: every file system checks clean.
    sh(&format!(
        "dd if={} of={} bs=1M skip=25 count=16 status=none",
        target.display(),
        data_part.display()
    ));
    tool(Command::new("fsck.ext4").arg("-fn").arg(&data_part));
    let boot_part = dir.path().join("p1");
    sh(&format!(
        "dd if={} of={} bs=1M skip=1 count=16 status=none",
        target.display(),
        boot_part.display()
    ));
    tool(Command::new("fsck.vfat").arg("-n").arg(&boot_part));

    // Our parser reads what we wrote, and the image verifies against it.
    let parsed = Bmap::parse(&std::fs::read_to_string(&bmap_path).unwrap()).unwrap();
    assert_eq!(parsed, bmap);
    parsed.verify_image(&img).unwrap();
    assert!(parsed.verify_image(&target).is_ok());

    // Same inputs, same bytes.
    let again = dir.path().join("again.img");
    write_disk(&spec(PartitionTable::Mbr, &parts), &again).unwrap();
    assert_eq!(sha256_file(&img), sha256_file(&again));
}

#[test]
fn gpt_disk_has_seeded_partuuids() {
    let parts = partition_images();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("edge.img");
    let layout = write_disk(&spec(PartitionTable::Gpt, &parts), &img).unwrap();
    let t = sfdisk_json(&img);
    assert_eq!(t["label"], "gpt");
    assert_eq!(t["id"].as_str().unwrap().to_lowercase(), layout.disk_id);
    let ps = t["partitions"].as_array().unwrap();
    for (got, want) in ps.iter().zip(&layout.partitions) {
        assert_eq!(got["uuid"].as_str().unwrap().to_lowercase(), want.partuuid);
        assert_eq!(got["name"], want.name.as_str());
        assert_eq!(got["start"].as_u64().unwrap() * 512, want.offset_bytes);
    }
    assert_eq!(ps[0]["type"], "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    assert_eq!(ps[2]["type"], "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    let verify = tool(Command::new("sfdisk").arg("--verify").arg(&img));
    assert!(verify.contains("No errors detected"), "{verify}");
    check_partitions_hold_images(&img, &layout, &parts);
    let again = dir.path().join("again.img");
    assert_eq!(
        write_disk(&spec(PartitionTable::Gpt, &parts), &again).unwrap(),
        layout
    );
    assert_eq!(sha256_file(&img), sha256_file(&again));

    // qcow2 of the same disk holds the same data.
    let q = dir.path().join("edge.qcow2");
    write_qcow2(&img, &q).unwrap();
    assert!(tool(Command::new("qemu-img").arg("info").arg(&q)).contains("file format: qcow2"));
    tool(
        Command::new("qemu-img")
            .args(["compare", "-q"])
            .arg(&img)
            .arg(&q),
    );
}

#[test]
fn parses_a_bmap_bmaptool_made() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("sparse.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(10 * MIB).unwrap();
    use std::io::{Seek, SeekFrom, Write};
    let mut f = f;
    f.seek(SeekFrom::Start(3 * MIB)).unwrap();
    f.write_all(&[1u8; 10_000]).unwrap();
    f.sync_all().unwrap();
    let theirs = dir.path().join("theirs.bmap");
    tool(
        Command::new("bmaptool")
            .arg("create")
            .arg("-o")
            .arg(&theirs)
            .arg(&img),
    );
    let text = std::fs::read_to_string(&theirs).unwrap();
    let parsed = Bmap::parse(&text).unwrap();
    assert_eq!(parsed.image_size, 10 * MIB);
    assert_eq!(parsed.ranges.len(), 1);
    assert_eq!(parsed.ranges[0].first, 768);
    parsed.verify_image(&img).unwrap();
    // Ours for the same file is byte-identical to bmaptool's.
    assert_eq!(Bmap::from_image(&img).unwrap().to_xml(), text);
    // A flipped bit in the file is caught.
    let bad = text.replacen("<ImageSize> 10485760", "<ImageSize> 10485761", 1);
    assert!(Bmap::parse(&bad).is_err());
}

#[test]
fn failing_disk_writer_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = DiskSpec {
        table: PartitionTable::Mbr,
        seed: "x".into(),
        partitions: vec![PartitionSpec {
            name: "root".into(),
            kind: PartitionType::Linux,
            image: dir.path().join("missing.sqfs"),
            size_bytes: None,
            bootable: false,
        }],
    };
    let err = write_disk(&spec, &dir.path().join("edge.img")).unwrap_err();
    assert!(format!("{err:#}").contains("missing.sqfs"), "{err:#}");
    assert!(dir_names(dir.path()).is_empty());
}
