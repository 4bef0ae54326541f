//! Switching the slot the firmware boots: the top-level `config.txt` takes the bytes of
//! `<slot>/config.txt`, written over its one sector in place.
//!
//! Not through `fatfs`' file writes: around the data they also set and clear the volume's dirty
//! flag in the boot sector and rewrite the directory entry, three writes where a power cut must
//! find one. `fatfs` only finds where the file's bytes are (a write recorded, never made), then
//! one `pwrite` of 512 bytes and an fsync.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use edge_config::system::{booted_slot, CONFIG_TXT_BYTES};

use super::fat;

/// Makes `device`'s top-level `config.txt` boot `slot`, durably.
pub fn switch_to(device: &Path, slot: &str) -> io::Result<()> {
    let file = fat::open_device(device)?;
    let wanted = {
        let mut recorder = Recorder::new(&file);
        let fs = fat::mount(&mut recorder)?;
        let path = format!("{slot}/config.txt");
        fat::read_file(&fs, &path, CONFIG_TXT_BYTES as u64 + 1).map_err(|e| {
            invalid(format!(
                "reading {path}: {e} (the slot's boot files are incomplete)"
            ))
        })?
    };
    let names_slot = std::str::from_utf8(&wanted)
        .ok()
        .and_then(booted_slot)
        .is_some_and(|s| s == slot);
    if wanted.len() != CONFIG_TXT_BYTES || !names_slot {
        return Err(invalid(format!(
            "{slot}/config.txt is not a {CONFIG_TXT_BYTES}-byte config.txt with os_prefix={slot}/ (the slot's boot files are incomplete)"
        )));
    }
    let offset = locate_config_txt(&file, &wanted)?;
    file.write_all_at(&wanted, offset)?;
    file.sync_all()?;
    match booted(device)? {
        Some(s) if s == slot => Ok(()),
        other => Err(invalid(format!(
            "config.txt names slot {other:?} after switching to {slot}"
        ))),
    }
}

/// The slot the top-level `config.txt` on `device` boots.
pub fn booted(device: &Path) -> io::Result<Option<String>> {
    let file = File::open(device)?;
    let mut recorder = Recorder::new(&file);
    let fs = fat::mount(&mut recorder)?;
    let text = fat::read_file(&fs, "config.txt", CONFIG_TXT_BYTES as u64 * 8)?;
    Ok(booted_slot(&String::from_utf8_lossy(&text)).map(str::to_string))
}

/// The device offset of `config.txt`'s bytes: `fatfs` writes `bytes` over the file, into a
/// recorder, and the one write of exactly those bytes tells where.
fn locate_config_txt(file: &File, bytes: &[u8]) -> io::Result<u64> {
    let mut recorder = Recorder::new(file);
    {
        let fs = fat::mount(&mut recorder)?;
        let mut config = fs.root_dir().open_file("config.txt")?;
        if config.seek(SeekFrom::End(0))? != CONFIG_TXT_BYTES as u64 {
            return Err(invalid(format!(
                "config.txt is not {CONFIG_TXT_BYTES} bytes: it cannot be switched in place (reflash the card with this edgeimg)"
            )));
        }
        config.seek(SeekFrom::Start(0))?;
        config.write_all(bytes)?;
        config.flush()?;
    }
    let mut data_writes = recorder.writes.iter().filter(|(_, w)| w == bytes);
    match (data_writes.next(), data_writes.next()) {
        (Some((offset, _)), None) if offset % CONFIG_TXT_BYTES as u64 == 0 => Ok(*offset),
        _ => Err(invalid(
            "config.txt's bytes do not sit in one sector of the boot partition".into(),
        )),
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Reads from the device; writes are recorded, never made.
struct Recorder<'a> {
    file: &'a File,
    position: u64,
    writes: Vec<(u64, Vec<u8>)>,
}

impl<'a> Recorder<'a> {
    fn new(file: &'a File) -> Self {
        Recorder {
            file,
            position: 0,
            writes: Vec::new(),
        }
    }
}

impl Read for Recorder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl Write for Recorder<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes.push((self.position, buf.to_vec()));
        self.position += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Recorder<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.position = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::Current(d) => self
                .position
                .checked_add_signed(d)
                .ok_or_else(|| invalid("seek before 0".into()))?,
            SeekFrom::End(d) => {
                let end = (&*self.file).seek(SeekFrom::End(0))?;
                end.checked_add_signed(d)
                    .ok_or_else(|| invalid("seek before 0".into()))?
            }
        };
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::fat::tests::boot_image;
    use edge_config::system::slot_config_txt;

    #[test]
    fn the_switch_rewrites_one_sector_and_boots_the_slot() {
        let dir = tempfile::tempdir().unwrap();
        let image = boot_image(dir.path());
        {
            let device = fat::open_device(&image).unwrap();
            let fs = fat::mount(&device).unwrap();
            let b = slot_config_txt("arm_64bit=1\n", "b").unwrap();
            fat::write_file(&fs, "b", "config.txt", &mut &b[..]).unwrap();
        }
        assert_eq!(booted(&image).unwrap().as_deref(), Some("a"));
        let before = std::fs::read(&image).unwrap();
        switch_to(&image, "b").unwrap();
        let after = std::fs::read(&image).unwrap();
        assert_eq!(booted(&image).unwrap().as_deref(), Some("b"));
        let changed: Vec<usize> = (0..before.len())
            .filter(|&i| before[i] != after[i])
            .collect();
        let sector = changed[0] / 512;
        assert!(
            changed.iter().all(|&i| i / 512 == sector),
            "bytes outside one sector changed: {:?}",
            changed
                .iter()
                .map(|i| i / 512)
                .collect::<std::collections::BTreeSet<_>>()
        );
        switch_to(&image, "a").unwrap();
        assert_eq!(
            std::fs::read(&image).unwrap(),
            before,
            "back to the same bytes"
        );
    }

    #[test]
    fn a_slot_without_its_config_txt_is_not_switched_to() {
        let dir = tempfile::tempdir().unwrap();
        let image = boot_image(dir.path());
        let e = switch_to(&image, "b").unwrap_err();
        assert!(e.to_string().contains("b/config.txt"), "{e}");
        {
            let device = fat::open_device(&image).unwrap();
            let fs = fat::mount(&device).unwrap();
            let wrong = slot_config_txt("", "a").unwrap();
            fat::write_file(&fs, "b", "config.txt", &mut &wrong[..]).unwrap();
        }
        let e = switch_to(&image, "b").unwrap_err();
        assert!(e.to_string().contains("os_prefix=b/"), "{e}");
        assert_eq!(booted(&image).unwrap().as_deref(), Some("a"));
    }
}
