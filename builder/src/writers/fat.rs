//! FAT boot partitions (Raspberry Pi firmware, EFI system partitions), with the `fatfs` crate.

use std::collections::HashMap;
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use fatfs::{
    Date, DateTime, FatType, FileSystem, FormatVolumeOptions, FsOptions, Time, TimeProvider,
};

use super::atomic::AtomicFile;
use crate::rootfs::{NodeKind, RootfsTree};

#[derive(Debug, Clone)]
pub struct FatOptions {
    /// Image size in bytes, a multiple of 512. 64 MiB and up is FAT32, smaller FAT16/12.
    pub size_bytes: u64,
    /// Volume label, at most 11 characters (stored upper-case), e.g. `BOOT` or `EFI`.
    pub label: String,
    /// Volume serial number (see [`super::ids::derived_u32`]).
    pub volume_id: u32,
}

/// Write the directories and files of `tree` (owners and modes do not exist on FAT and are
/// dropped; hardlinks become copies) into a new FAT image. Every entry carries the tree's
/// default time (the build time): fatfs stamps entries only from its time provider.
pub fn write_fat(tree: &RootfsTree, opts: &FatOptions, out: &Path) -> Result<()> {
    if !opts.size_bytes.is_multiple_of(512) || opts.size_bytes < 64 << 10 {
        bail!(
            "FAT size {} bytes must be a multiple of 512 and at least 64 KiB",
            opts.size_bytes
        );
    }
    let label = fat_label(&opts.label)?;
    // Built in memory: over a file, fatfs makes a system call per sector it touches.
    let mut image = Cursor::new(vec![0u8; usize::try_from(opts.size_bytes)?]);
    let mut format = FormatVolumeOptions::new()
        .volume_id(opts.volume_id)
        .volume_label(label);
    if opts.size_bytes >= 64 << 20 {
        format = format.fat_type(FatType::Fat32);
    }
    fatfs::format_volume(&mut image, format)
        .with_context(|| format!("cannot format {} as FAT", out.display()))?;
    image.seek(SeekFrom::Start(0))?;
    let free_clusters;
    {
        let options = FsOptions::new()
            .update_accessed_date(false)
            .time_provider(fixed_time(tree.default_mtime()));
        let fs = FileSystem::new(&mut image, options)?;
        fill(&fs, tree).with_context(|| format!("cannot fill {}", out.display()))?;
        free_clusters = fs.stats()?.free_clusters();
        fs.unmount()?;
    }
    super::fat_fixups::fix_dot_entries(image.get_mut(), free_clusters)?;
    let mut file = AtomicFile::create(out)?;
    write_sparse(file.file(), image.get_ref())
        .with_context(|| format!("cannot write {}", out.display()))?;
    file.commit()
}

/// `bytes` into `file`, leaving holes where whole blocks are zero: the unused part of a boot
/// partition stays unmapped.
fn write_sparse(file: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    const BLOCK: usize = 4096;
    file.set_len(bytes.len() as u64)?;
    let mut offset = 0;
    for block in bytes.chunks(BLOCK) {
        if block.iter().any(|&b| b != 0) {
            file.seek(SeekFrom::Start(offset as u64))?;
            file.write_all(block)?;
        }
        offset += block.len();
    }
    Ok(())
}

/// Read the file `name` from the FAT partition at `offset..offset+len` of a disk image (e.g.
/// the kernel from a Pi image's boot partition, to boot it in QEMU).
pub fn read_fat_file(image: &Path, offset: u64, len: u64, name: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut part = vec![0u8; usize::try_from(len)?];
    let mut f =
        std::fs::File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut part)
        .with_context(|| format!("{} ends inside its partition at {offset}", image.display()))?;
    // fatfs wants a read-write stream; the copy in memory keeps the image untouched.
    let fs = FileSystem::new(std::io::Cursor::new(part), FsOptions::new()).with_context(|| {
        format!(
            "no FAT file system at offset {offset} of {}",
            image.display()
        )
    })?;
    let mut data = Vec::new();
    fs.root_dir()
        .open_file(name)
        .with_context(|| format!("{name} is not in the boot partition of {}", image.display()))?
        .read_to_end(&mut data)?;
    Ok(data)
}

fn fill<T: fatfs::ReadWriteSeek>(fs: &FileSystem<T>, tree: &RootfsTree) -> Result<()> {
    let root = fs.root_dir();
    for (path, node) in tree.iter().filter(|(p, _)| !p.is_root()) {
        let name = path.as_str();
        match &node.kind {
            NodeKind::Dir => {
                root.create_dir(name)
                    .with_context(|| format!("cannot create directory {path}"))?;
            }
            NodeKind::File(_) | NodeKind::Hardlink(_) => {
                let data = tree.file_data(path).map(|d| &d[..]).unwrap_or(&[]);
                let mut f = root
                    .create_file(name)
                    .with_context(|| format!("cannot create {path}"))?;
                f.truncate()?;
                f.write_all(data)
                    .with_context(|| format!("{path} does not fit; make the FAT partition larger"))?;
            }
            _ => bail!("{path} is a symlink, device or fifo, which FAT cannot store; boot partitions hold only files and directories"),
        }
    }
    Ok(())
}

fn fat_label(label: &str) -> Result<[u8; 11]> {
    let upper = label.to_ascii_uppercase();
    if upper.len() > 11
        || !upper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_ ".contains(&b))
    {
        bail!("FAT label {label:?} must be at most 11 letters, digits, `-` or `_`");
    }
    let mut out = [b' '; 11];
    out[..upper.len()].copy_from_slice(upper.as_bytes());
    Ok(out)
}

/// fatfs asks a `&'static` provider for the time of new directory entries; one provider per
/// distinct time is leaked (a few bytes, a handful per build) to keep images reproducible.
fn fixed_time(t: u64) -> &'static FixedTime {
    static PROVIDERS: Mutex<Option<HashMap<u64, &'static FixedTime>>> = Mutex::new(None);
    let mut map = PROVIDERS.lock().unwrap_or_else(|p| p.into_inner());
    map.get_or_insert_with(HashMap::new)
        .entry(t)
        .or_insert_with(|| Box::leak(Box::new(FixedTime(dos_time(t)))))
}

#[derive(Debug)]
struct FixedTime(DateTime);

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> DateTime {
        self.0
    }
}

/// Unix seconds (UTC) to a DOS date-time, clamped to FAT's 1980..=2107 range. Hand-written
/// (civil-from-days) to avoid a date crate for ten lines.
pub fn dos_time(unix: u64) -> DateTime {
    const MIN: u64 = 315_532_800; // 1980-01-01
    const MAX: u64 = 4_354_819_199; // 2107-12-31 23:59:59
    let t = unix.clamp(MIN, MAX);
    let (days, secs) = ((t / 86_400) as i64, t % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    DateTime {
        date: Date {
            year: year as u16,
            month: month as u16,
            day: day as u16,
        },
        time: Time {
            hour: (secs / 3600) as u16,
            min: (secs / 60 % 60) as u16,
            sec: (secs % 60) as u16,
            millis: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_time_converts_utc() {
        // 2024-02-29 13:45:06 UTC
        let t = dos_time(1_709_214_306);
        assert_eq!((t.date.year, t.date.month, t.date.day), (2024, 2, 29));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (13, 45, 6));
        assert_eq!(dos_time(0).date.year, 1980);
    }
}
