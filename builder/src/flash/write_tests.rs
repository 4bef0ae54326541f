//! Copying and read-back verification on plain files (the same code disks go through).

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::writers::bmap::Bmap;

const MIB: u64 = 1 << 20;

/// A 12 MiB sparse image with data at 0, across the 4 MiB chunk boundary, and at the end.
fn sparse_image(dir: &Path) -> (PathBuf, Vec<Piece>) {
    let path = dir.join("disk.img");
    let mut f = File::create(&path).unwrap();
    f.set_len(12 * MIB).unwrap();
    for (at, len, byte) in [
        (0, 5000, 1u8),
        (4 * MIB - 8192, 3 * 4096 + 10, 2),
        (12 * MIB - 4096, 4096, 3),
    ] {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&vec![byte; len as usize]).unwrap();
    }
    f.sync_all().unwrap();
    let bmap = Bmap::from_image(&path).unwrap();
    let pieces = bmap
        .ranges
        .iter()
        .map(|r| Piece {
            bytes: bmap.byte_range(r),
            sha256: r.sha256,
        })
        .collect();
    (path, pieces)
}

/// [`copy_pieces`] from the image file at `img`, without a progress bar.
fn copy(img: &Path, out: &File, pieces: &[Piece], cancel: &AtomicBool) -> Result<Vec<Written>> {
    copy_pieces(
        &File::open(img).unwrap(),
        out,
        pieces,
        cancel,
        &ProgressBar::hidden(),
    )
}

fn target(dir: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("target.img"))
        .unwrap()
}

#[test]
fn copies_mapped_ranges_and_verifies_them() {
    let dir = tempfile::tempdir().unwrap();
    let (img, pieces) = sparse_image(dir.path());
    assert_eq!(pieces.len(), 3);
    let out = target(dir.path());
    // A used card: old bytes everywhere.
    out.write_all_at(&vec![0x55; 12 * MIB as usize], 0).unwrap();
    let image = File::open(&img).unwrap();
    let cancel = AtomicBool::new(false);
    let written = copy_pieces(&image, &out, &pieces, &cancel, &ProgressBar::hidden()).unwrap();
    assert_eq!(written.len(), 3);
    verify_written(&out, &written, &cancel, &ProgressBar::hidden()).unwrap();
    let (want, got) = (
        std::fs::read(&img).unwrap(),
        std::fs::read(dir.path().join("target.img")).unwrap(),
    );
    for p in &pieces {
        let r = p.bytes.start as usize..p.bytes.end as usize;
        assert_eq!(want[r.clone()], got[r]);
    }
    // Unmapped ranges are left alone, as bmaptool does, but for the first MiB: zeroed whole.
    assert_eq!(got[MIB as usize], 0x55);
    assert!(got[5000..HEAD as usize].iter().all(|&b| b == 0));
}

/// An image read that fails half way (the image file was cut short after it was checked):
/// the old card's partition table is gone and the new one was never written.
#[test]
fn a_copy_cut_short_leaves_no_partition_table() {
    let dir = tempfile::tempdir().unwrap();
    let (img, pieces) = sparse_image(dir.path());
    let out = target(dir.path());
    // A used card with a partition table.
    out.write_all_at(&vec![0x55; 12 * MIB as usize], 0).unwrap();
    out.write_all_at(&[0x55, 0xAA], 510).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(8 * MIB)
        .unwrap();
    let err = copy(&img, &out, &pieces, &AtomicBool::new(false)).unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot read the image"),
        "{err:#}"
    );
    let got = std::fs::read(dir.path().join("target.img")).unwrap();
    assert!(
        got[..HEAD as usize].iter().all(|&b| b == 0),
        "the head is zeros"
    );
    // What lies after the head went out before the failure.
    let second = pieces[1].bytes.start as usize;
    assert_eq!(got[second], 2);
}

#[test]
fn a_target_range_that_differs_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (img, pieces) = sparse_image(dir.path());
    let out = target(dir.path());
    let cancel = AtomicBool::new(false);
    let written = copy(&img, &out, &pieces, &cancel).unwrap();
    // What a failing or fake-capacity card does: a range reads back different.
    out.write_all_at(&[0xff], pieces[1].bytes.start + 4096)
        .unwrap();
    let msg = format!(
        "{:#}",
        verify_written(&out, &written, &cancel, &ProgressBar::hidden()).unwrap_err()
    );
    assert!(msg.contains("verification failed"), "{msg}");
    assert!(
        msg.contains(&format!("offset {}", pieces[1].bytes.start)),
        "{msg}"
    );
    // A target shorter than what was written fails too.
    out.set_len(8 * MIB).unwrap();
    assert!(verify_written(&out, &written, &cancel, &ProgressBar::hidden()).is_err());
}

#[test]
fn an_image_that_no_longer_matches_its_bmap_stops_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (img, pieces) = sparse_image(dir.path());
    let f = OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&[9], 100).unwrap();
    let out = target(dir.path());
    let err = copy(&img, &out, &pieces, &AtomicBool::new(false)).unwrap_err();
    assert!(format!("{err:#}").contains("the image changed"), "{err:#}");
}

#[test]
fn cancel_stops_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (img, pieces) = sparse_image(dir.path());
    let out = target(dir.path());
    let err = copy(&img, &out, &pieces, &AtomicBool::new(true)).unwrap_err();
    assert_eq!(
        err.downcast_ref::<Interrupted>().map(|i| i.phase),
        Some("writing")
    );
    assert_eq!(out.metadata().unwrap().len(), 0);
}

#[test]
fn chunks_are_aligned_to_chunk_size() {
    let got: Vec<_> = chunks(4096..9 * MIB + 5).collect();
    assert_eq!(got, [4096..4 * MIB, 4 * MIB..8 * MIB, 8 * MIB..9 * MIB + 5]);
    assert_eq!(chunks(7..7).count(), 0);
}
