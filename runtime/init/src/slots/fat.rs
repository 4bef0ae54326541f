//! Writing one slot's folder on the FAT boot partition with `fatfs`, on the partition's block
//! device (or, in tests, an image file).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use fatfs::{Dir, FileSystem, FsOptions, ReadWriteSeek};

/// The boot partition, opened for writing.
pub fn open_device(device: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", device.display())))
}

/// The file system on `device`; no access dates are written, so reading writes nothing.
pub fn mount<T: ReadWriteSeek>(mut device: T) -> io::Result<FileSystem<T>> {
    // fatfs reads the boot sector from where the stream stands.
    device.seek(io::SeekFrom::Start(0))?;
    FileSystem::new(device, FsOptions::new().update_accessed_date(false))
}

/// Makes `<slot>/` an empty folder: the slot's old boot files go, no other folder is touched.
pub fn empty_slot<T: ReadWriteSeek>(fs: &FileSystem<T>, slot: &str) -> io::Result<()> {
    let root = fs.root_dir();
    match root.open_dir(slot) {
        Ok(dir) => remove_contents(&dir),
        Err(_) => root.create_dir(slot).map(drop),
    }
}

fn remove_contents<T: ReadWriteSeek>(dir: &Dir<T>) -> io::Result<()> {
    let names: Vec<(String, bool)> = dir
        .iter()
        .map(|e| e.map(|e| (e.file_name(), e.is_dir())))
        .collect::<io::Result<_>>()?;
    for (name, is_dir) in names {
        if name == "." || name == ".." {
            continue;
        }
        if is_dir {
            remove_contents(&dir.open_dir(&name)?)?;
        }
        dir.remove(&name)?;
    }
    Ok(())
}

/// Writes `<slot>/<path>` from `data`, creating the folders on the way.
pub fn write_file<T: ReadWriteSeek>(
    fs: &FileSystem<T>,
    slot: &str,
    path: &str,
    data: &mut dyn Read,
) -> io::Result<u64> {
    let mut dir = fs.root_dir().open_dir(slot)?;
    let mut components: Vec<&str> = path.split('/').collect();
    let name = components.pop().expect("split gives one at least");
    for component in components {
        dir = match dir.open_dir(component) {
            Ok(d) => d,
            Err(_) => dir.create_dir(component)?,
        };
    }
    let mut file = dir.create_file(name)?;
    file.truncate()?;
    io::copy(data, &mut file)
}

/// The bytes of `path` on the file system, up to `limit`.
pub fn read_file<T: ReadWriteSeek>(
    fs: &FileSystem<T>,
    path: &str,
    limit: u64,
) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs.root_dir()
        .open_file(path)?
        .take(limit)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use edge_config::system::slot_config_txt;
    use std::io::Write;

    /// A FAT image file as the builder lays a fresh card out: `config.txt` booting slot a,
    /// `a/` with its files, `b/` empty.
    pub fn boot_image(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("boot.img");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.set_len(8 << 20).unwrap();
        fatfs::format_volume(&file, fatfs::FormatVolumeOptions::new()).unwrap();
        let fs = mount(&file).unwrap();
        {
            let root = fs.root_dir();
            let a = slot_config_txt("arm_64bit=1\n", "a").unwrap();
            root.create_file("config.txt")
                .unwrap()
                .write_all(&a)
                .unwrap();
            let slot_a = root.create_dir("a").unwrap();
            slot_a
                .create_file("config.txt")
                .unwrap()
                .write_all(&a)
                .unwrap();
            slot_a
                .create_file("vmlinuz")
                .unwrap()
                .write_all(b"kernel a")
                .unwrap();
            root.create_dir("b").unwrap();
        }
        fs.unmount().unwrap();
        path
    }

    #[test]
    fn a_slot_folder_is_emptied_and_written_without_touching_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let image = boot_image(dir.path());
        let device = open_device(&image).unwrap();
        let fs = mount(&device).unwrap();
        write_file(&fs, "b", "old.txt", &mut &b"old"[..]).unwrap();
        empty_slot(&fs, "b").unwrap();
        write_file(&fs, "b", "overlays/x.dtbo", &mut &b"overlay"[..]).unwrap();
        write_file(&fs, "b", "vmlinuz", &mut &b"kernel b"[..]).unwrap();
        empty_slot(&fs, "b").unwrap();
        write_file(&fs, "b", "vmlinuz", &mut &b"kernel b2"[..]).unwrap();
        fs.unmount().unwrap();

        let fs = mount(&device).unwrap();
        assert_eq!(read_file(&fs, "b/vmlinuz", 100).unwrap(), b"kernel b2");
        assert!(read_file(&fs, "b/overlays/x.dtbo", 100).is_err());
        assert!(read_file(&fs, "b/old.txt", 100).is_err());
        assert_eq!(read_file(&fs, "a/vmlinuz", 100).unwrap(), b"kernel a");
    }
}
