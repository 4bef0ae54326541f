//! Writing the image's pieces to the target, then reading them back to prove they landed.
//! One path for disks and files: only opening and finishing differ.

use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytesize::ByteSize;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::source::{Piece, Source};
use super::target::Target;
use super::Interrupted;
use crate::writers::atomic::AtomicFile;

/// Writes go out in chunks aligned to this size: SD cards erase in 4 MiB units, and it is
/// big enough that per-call overhead does not matter.
pub const CHUNK: u64 = 4 << 20;
/// Flush this often so the page cache does not fill with gigabytes for a slow card, and the
/// progress bar shows the card's speed rather than memory's.
const SYNC_EVERY: u64 = 64 << 20;

/// A piece as it was written, with the sha256 of the bytes that went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub bytes: Range<u64>,
    pub sha256: [u8; 32],
}

#[derive(Debug)]
pub struct Report {
    pub bytes_written: u64,
    pub write_time: Duration,
    pub verify_time: Duration,
}

/// Check the image against its bmap, then write it to `target` (which passed
/// [`Target::check`]), sync, and verify by reading back. `cancel` is checked between chunks
/// (Ctrl-C); `progress` shows bars on stderr.
pub fn flash(
    source: &Source,
    target: &Target,
    cancel: &AtomicBool,
    progress: bool,
) -> Result<Report> {
    let image = File::open(&source.image)
        .with_context(|| format!("cannot open {}", source.image.display()))?;
    let pieces = source.pieces();
    let total: u64 = pieces.iter().map(|p| p.bytes.end - p.bytes.start).sum();
    if let Some((path, _)) = &source.bmap {
        // A read pass before the first write: a corrupt or tampered image never reaches the card.
        check_image(&image, &pieces, cancel, &bar(progress, "checking", total)).with_context(
            || {
                format!(
                    "checking {} against its bmap {} stopped; nothing was written",
                    source.image.display(),
                    path.display()
                )
            },
        )?;
    }
    let mut out = Output::open(target, source.size)?;
    let unusable = || match target {
        Target::Disk { path, .. } => format!(
            "{} was not flashed completely and is not usable until it is flashed again",
            path.display()
        ),
        Target::File {
            path,
            existing: Some(_),
        } => format!("{} was left as it was", path.display()),
        Target::File { path, .. } => format!("{} was not created", path.display()),
    };
    let started = Instant::now();
    let written = copy_pieces(
        &image,
        out.file(),
        &pieces,
        cancel,
        &bar(progress, "writing", total),
    )
    .with_context(unusable)?;
    let write_time = started.elapsed();
    drop_cached(out.file());
    let started = Instant::now();
    verify_written(
        out.file(),
        &written,
        cancel,
        &bar(progress, "verifying", total),
    )
    .with_context(unusable)?;
    let verify_time = started.elapsed();
    out.finish()?;
    Ok(Report {
        bytes_written: total,
        write_time,
        verify_time,
    })
}

enum Output {
    Device(File),
    File(AtomicFile),
}

impl Output {
    fn open(target: &Target, size: u64) -> Result<Output> {
        match target {
            Target::Disk { path, rdev, .. } => {
                // O_EXCL on a block device fails if anything else holds it: a mounted file
                // system, swap, device-mapper, or another exclusive writer.
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_EXCL)
                    .open(path)
                    .map_err(|e| match e.raw_os_error() {
                        Some(libc::EBUSY) => anyhow!(
                            "{} is in use (mounted, or held by another program); unmount it and try again",
                            path.display()
                        ),
                        Some(libc::EACCES) | Some(libc::EPERM) => anyhow!(
                            "cannot open {} for writing: permission denied; run edgeimg flash with sudo",
                            path.display()
                        ),
                        _ => anyhow!(e).context(format!("cannot open {} for writing", path.display())),
                    })?;
                let meta = f.metadata()?;
                if !meta.file_type().is_block_device() || meta.rdev() != *rdev {
                    bail!(
                        "{} changed since it was checked (was the card swapped?); run the command again",
                        path.display()
                    );
                }
                Ok(Output::Device(f))
            }
            Target::File { path, .. } => {
                // A fresh sparse file: ranges the bmap leaves out read as zeros.
                let mut f = AtomicFile::create(path)?;
                f.file().set_len(size).with_context(|| {
                    format!("cannot size {} to {size} bytes", f.path().display())
                })?;
                Ok(Output::File(f))
            }
        }
    }

    fn file(&mut self) -> &mut File {
        match self {
            Output::Device(f) => f,
            Output::File(f) => f.file(),
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Output::Device(_) => Ok(()),
            Output::File(f) => f.commit(),
        }
    }
}

/// The start of a disk that holds what makes it bootable: the MBR or GPT header and entries,
/// and on a Pi the boot partition's first sectors. It is zeroed first and written last (as
/// coreos-installer does), so a flash cut short at any point, by Ctrl-C, a pulled card or a
/// power cut, leaves no partition table: nothing takes the card for bootable.
pub const HEAD: u64 = 1 << 20;

/// Copy each piece from `image` to `out` at the same offset, hashing what was written, and
/// sync: first zeros over [`HEAD`], then everything after it, then the image's head. A piece
/// whose bytes no longer match the bmap (the image changed after it was checked) stops the
/// copy.
pub fn copy_pieces(
    image: &File,
    out: &File,
    pieces: &[Piece],
    cancel: &AtomicBool,
    bar: &ProgressBar,
) -> Result<Vec<Written>> {
    if cancel.load(Ordering::Relaxed) {
        return Err(Interrupted { phase: "writing" }.into());
    }
    let head_len = pieces
        .iter()
        .map(|p| p.bytes.end)
        .max()
        .unwrap_or(0)
        .min(HEAD);
    let mut head = vec![0u8; head_len as usize];
    out.write_all_at(&head, 0)
        .and_then(|()| out.sync_data())
        .context(
            "cannot clear the start of the target; was the card removed, or is it read-only?",
        )?;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut unsynced = 0;
    let mut written = Vec::with_capacity(pieces.len());
    // The image's bytes that belong in the head, kept until everything else is on the target.
    let mut held = Vec::new();
    for piece in pieces {
        let mut hash = Sha256::new();
        for chunk in chunks(piece.bytes.clone()) {
            if cancel.load(Ordering::Relaxed) {
                return Err(Interrupted { phase: "writing" }.into());
            }
            let data = &mut buf[..(chunk.end - chunk.start) as usize];
            image
                .read_exact_at(data, chunk.start)
                .with_context(|| format!("cannot read the image at offset {}", chunk.start))?;
            hash.update(&*data);
            let in_head = chunk.start.min(HEAD)..chunk.end.min(HEAD);
            if !in_head.is_empty() {
                let (at, len) = (
                    in_head.start as usize,
                    (in_head.end - in_head.start) as usize,
                );
                head[at..at + len].copy_from_slice(&data[..len]);
                held.push(in_head.clone());
            }
            let after = chunk.start.max(HEAD);
            if after < chunk.end {
                write_at(out, &data[(after - chunk.start) as usize..], after)?;
                unsynced += chunk.end - after;
            }
            if unsynced >= SYNC_EVERY {
                out.sync_data().context("cannot flush the written data")?;
                unsynced = 0;
            }
            bar.inc(data.len() as u64);
        }
        let sha256: [u8; 32] = hash.finalize().into();
        if piece.sha256.is_some_and(|want| want != sha256) {
            bail!(
                "the image changed while it was being written: bytes {}..{} no longer match its bmap",
                piece.bytes.start,
                piece.bytes.end
            );
        }
        written.push(Written {
            bytes: piece.bytes.clone(),
            sha256,
        });
    }
    // Everything else is on the target before the partition table is.
    out.sync_data()
        .context("cannot flush the written data to the target")?;
    for range in held {
        write_at(
            out,
            &head[range.start as usize..range.end as usize],
            range.start,
        )?;
    }
    // The bar stays at 100% while the last writes reach the card.
    out.sync_all()
        .context("cannot flush the written data to the target")?;
    bar.finish_and_clear();
    Ok(written)
}

fn write_at(out: &File, data: &[u8], at: u64) -> Result<()> {
    out.write_all_at(data, at).with_context(|| {
        format!(
            "cannot write {} at offset {at}; was the card removed, or is it failing?",
            ByteSize(data.len() as u64)
        )
    })
}

/// Check each piece of `image` that has a recorded sha256 against it.
pub fn check_image(
    image: &File,
    pieces: &[Piece],
    cancel: &AtomicBool,
    bar: &ProgressBar,
) -> Result<()> {
    let mut buf = vec![0u8; CHUNK as usize];
    for piece in pieces {
        let Some(want) = piece.sha256 else {
            bar.inc(piece.bytes.end - piece.bytes.start);
            continue;
        };
        let got = sha256_range(
            image,
            piece.bytes.clone(),
            &mut buf,
            cancel,
            bar,
            "checking the image",
        )
        .context("cannot read the image")?;
        if got != want {
            bail!(
                "the {} at offset {} differ from the bmap's sha256: the image is corrupt, or not the one the bmap was made for; rebuild it, or pass the bmap made for it with --bmap",
                ByteSize(piece.bytes.end - piece.bytes.start),
                piece.bytes.start
            );
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Read every written piece back from `out` and compare its sha256.
pub fn verify_written(
    out: &File,
    written: &[Written],
    cancel: &AtomicBool,
    bar: &ProgressBar,
) -> Result<()> {
    let mut buf = vec![0u8; CHUNK as usize];
    for w in written {
        let got = sha256_range(out, w.bytes.clone(), &mut buf, cancel, bar, "verifying")
            .context("cannot read back the target")?;
        if got != w.sha256 {
            bail!(
                "verification failed: the {} at offset {} read back differ from what was written; the card may be failing or smaller than it claims: try another card",
                ByteSize(w.bytes.end - w.bytes.start),
                w.bytes.start
            );
        }
    }
    bar.finish_and_clear();
    Ok(())
}

fn sha256_range(
    f: &File,
    range: Range<u64>,
    buf: &mut [u8],
    cancel: &AtomicBool,
    bar: &ProgressBar,
    phase: &'static str,
) -> Result<[u8; 32]> {
    let mut hash = Sha256::new();
    for chunk in chunks(range) {
        if cancel.load(Ordering::Relaxed) {
            return Err(Interrupted { phase }.into());
        }
        let data = &mut buf[..(chunk.end - chunk.start) as usize];
        f.read_exact_at(data, chunk.start)
            .with_context(|| format!("at offset {}", chunk.start))?;
        hash.update(&*data);
        bar.inc(data.len() as u64);
    }
    Ok(hash.finalize().into())
}

/// `range` cut at multiples of [`CHUNK`].
fn chunks(range: Range<u64>) -> impl Iterator<Item = Range<u64>> {
    let mut pos = range.start;
    std::iter::from_fn(move || {
        if pos >= range.end {
            return None;
        }
        let end = ((pos / CHUNK + 1) * CHUNK).min(range.end);
        let chunk = pos..end;
        pos = end;
        Some(chunk)
    })
}

/// Drop the target's cached pages so the read-back comes from the card, not from memory.
/// Best effort: a kernel that ignores the advice only makes verification weaker.
fn drop_cached(f: &File) {
    // SAFETY: posix_fadvise on a descriptor we hold; it only advises the page cache.
    unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

fn bar(visible: bool, label: &str, total: u64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
