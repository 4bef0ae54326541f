//! The direct-boot initramfs: the large files (the device binaries, an engine library, a big
//! model) compressed at zstd level 19 in members of their own, then everything else as one
//! archive at level 9, concatenated. The kernel unpacks concatenated archives in order, each
//! compressed on its own (the way early microcode is prepended), so a device sees one tree.
//!
//! Every large executable (the programs and shared libraries) shares one member: edge-init and
//! edge-runtime link much of the same code (std, serde, the config), which one zstd frame with a
//! window over both stores once (x86_64 tract: 6.52 -> 6.22 MB for the two). Each other large
//! file, a model or a kernel module, keeps a member of its own, so a new model compresses only
//! itself again.
//!
//! Level 19 takes 10-20 s on a 20 MB binary and saves about a tenth of it; a large member is the
//! same from one build to the next, so it is compressed once and kept in the cache, named after
//! what it decompresses to. The small files change with every recipe and stay at level 9 (under
//! a second).

use std::collections::BTreeSet;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::atomic::AtomicFile;
use super::compression::Compression;
use super::cpio::{write_newc_of, LinkGroups};
use crate::packages::Progress;
use crate::rootfs::{NodeKind, RootPath, RootfsTree};

/// Files at least this big go in the level-19 members, ahead of the rest.
pub const LARGE_FILE: usize = 1 << 20;

/// The level large files are compressed at.
const LARGE_LEVEL: i32 = 19;

/// The largest window a member gets: 32 MiB, which the kernel's decompressor allocates while it
/// unpacks (it accepts up to 128 MiB). Level 19's own is 8 MiB: most of a 20 MB edge-runtime
/// would lie beyond reach of the edge-init before it.
const MAX_WINDOW_LOG: u32 = 25;

/// Where compressed members are kept:
/// `<cache>/initramfs-members/<sha256 of the archive>-<format>.zst`.
const CACHE_FOLDER: &str = "initramfs-members";

/// Names the compressor in the cache: a change to it must not reuse another's output.
const MEMBER_FORMAT: &str = "zstd19-long-v2";

/// Write `tree` as the concatenated archives the kernel unpacks as its initramfs.
///
/// The large files' archives come first, each holding the file's parent directories too (the
/// kernel creates a file only where its directory exists); the rest comes last and lists every
/// directory again, so their modes and times are the tree's once unpacking ends.
pub fn write_initramfs(
    tree: &RootfsTree,
    out: &Path,
    cache_dir: &Path,
    progress: &Progress,
) -> Result<()> {
    let large = large_files(tree);
    let members: Vec<Vec<u8>> = large_members(tree, &large)
        .iter()
        .map(|files| {
            let keep = |path: &RootPath| {
                files
                    .iter()
                    .any(|file| path == file || file.ancestors().any(|a| &a == path))
            };
            let mut archive = Vec::new();
            write_newc_of(tree, keep, &mut archive)?;
            Ok(archive)
        })
        .collect::<Result<_>>()?;
    let cache = MemberCache {
        folder: cache_dir.join(CACHE_FOLDER),
    };
    let cached: Vec<Option<Vec<u8>>> = members.iter().map(|m| cache.get(m)).collect();
    let missing = cached.iter().filter(|c| c.is_none()).count();
    let bar =
        (missing > 0).then(|| progress.steps("compressing large files (once)", missing as u64));

    let mut file = AtomicFile::create(out)?;
    let mut writer = BufWriter::new(file.file());
    for (archive, cached) in members.iter().zip(cached) {
        let compressed = match cached {
            Some(hit) => hit,
            None => {
                let compressed = compress_large(archive)?;
                cache.put(archive, &compressed);
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                compressed
            }
        };
        writer
            .write_all(&compressed)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let writer = Compression::Zstd
        .compress_into(writer, |w| write_newc_of(tree, |p| !large.contains(p), w))?;
    writer
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", out.display()))?;
    file.commit()
}

/// Regular files of at least [`LARGE_FILE`] bytes that are no hardlink group's (a group's names
/// must stay in one archive for the kernel to link them).
fn large_files(tree: &RootfsTree) -> BTreeSet<RootPath> {
    let links = LinkGroups::of(tree);
    tree.iter()
        .filter(|(path, node)| {
            matches!(&node.kind, NodeKind::File(data) if data.len() >= LARGE_FILE)
                && links.group_of(path).is_none()
        })
        .map(|(path, _)| path.clone())
        .collect()
}

/// The members the large files go in: every executable one together, then each other one alone.
fn large_members(tree: &RootfsTree, large: &BTreeSet<RootPath>) -> Vec<Vec<RootPath>> {
    let (executables, others): (Vec<RootPath>, Vec<RootPath>) = large
        .iter()
        .cloned()
        .partition(|path| tree.get(path).is_some_and(|n| n.meta.mode & 0o111 != 0));
    let alone = others.into_iter().map(|path| vec![path]);
    (!executables.is_empty())
        .then_some(executables)
        .into_iter()
        .chain(alone)
        .collect()
}

fn compress_large(archive: &[u8]) -> Result<Vec<u8>> {
    // The window spans the whole member (up to MAX_WINDOW_LOG), so a file finds the code it
    // shares with any file before it; long-distance matching finds such far matches. A member
    // holds at least LARGE_FILE (2^20) bytes.
    let window_log = archive
        .len()
        .next_power_of_two()
        .trailing_zeros()
        .clamp(20, MAX_WINDOW_LOG);
    // Single-threaded, like the rest: the same bytes on every host.
    let mut encoder = zstd::Encoder::new(Vec::new(), LARGE_LEVEL).context("cannot start zstd")?;
    encoder
        .include_checksum(true)
        .and_then(|()| encoder.long_distance_matching(true))
        .and_then(|()| encoder.window_log(window_log))
        .context("cannot configure zstd")?;
    encoder.write_all(archive)?;
    encoder.finish().context("zstd compression failed")
}

/// Compressed members by the SHA-256 of the archive they hold. A member that does not
/// decompress to exactly that archive is not used; one that cannot be stored only costs the
/// next build the compression again.
struct MemberCache {
    folder: PathBuf,
}

impl MemberCache {
    fn path(&self, archive: &[u8]) -> PathBuf {
        let digest = hex::encode(Sha256::digest(archive));
        self.folder.join(format!("{digest}-{MEMBER_FORMAT}.zst"))
    }

    fn get(&self, archive: &[u8]) -> Option<Vec<u8>> {
        let compressed = std::fs::read(self.path(archive)).ok()?;
        let mut decoded = Vec::with_capacity(archive.len());
        zstd::Decoder::new(&compressed[..])
            .ok()?
            .read_to_end(&mut decoded)
            .ok()?;
        (decoded == archive).then_some(compressed)
    }

    fn put(&self, archive: &[u8], compressed: &[u8]) {
        if let Err(e) = crate::packages::store_in_cache(&self.path(archive), compressed) {
            tracing::warn!("cannot keep a compressed initramfs member: {e:#}");
        }
    }
}
