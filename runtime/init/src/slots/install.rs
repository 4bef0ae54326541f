//! Writing a staged artifact into the inactive slot: the root squashfs straight onto its
//! partition, the boot files into its folder on the FAT, then the root read back and hashed.
//! Nothing here touches the running slot, `state.json` or the top-level `config.txt`; the
//! caller makes the slot a trial only once this returned `Ok`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use edge_config::artifact::{destination, read_artifact, ArtifactError, Destination};
use edge_config::signing::VerifyingKey;
use edge_config::system::{Part, SystemConfig, UpdateManifest, SLOTS};
use sha2::{Digest, Sha256};

use super::fat;
use super::partition::Devices;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Artifact(#[from] ArtifactError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the root partition {} does not read back what was written (sha256 differs from the update's root.squashfs): the medium may be failing", device.display())]
    ReadBack { device: PathBuf },
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> InstallError + 'a {
    move |source| InstallError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Installs the artifact at `staged` into `slot` (never the running one: the caller passes the
/// other). The manifest, once every byte is written, synced and the root read back.
pub fn install(
    staged: &Path,
    key: &VerifyingKey,
    system: &SystemConfig,
    slot: &'static str,
    devices: &Devices,
) -> Result<UpdateManifest, InstallError> {
    let root_path = &devices.roots[usize::from(slot == SLOTS[1])];
    let artifact = File::open(staged).map_err(io_error("opening", staged))?;
    let root = OpenOptions::new()
        .write(true)
        .open(root_path)
        .map_err(io_error("opening", root_path))?;
    let boot = fat::open_device(&devices.boot).map_err(io_error("opening", &devices.boot))?;
    let manifest = {
        let fs = fat::mount(&boot).map_err(io_error("mounting the FAT on", &devices.boot))?;
        fat::empty_slot(&fs, slot)
            .map_err(io_error("emptying the slot folder on", &devices.boot))?;
        // Large writes: the root is tens of MB and a block device takes them best whole.
        let mut root_writer = BufWriter::with_capacity(1 << 20, &root);
        let manifest =
            read_artifact(
                BufReader::new(artifact),
                key,
                system,
                |part, data| match destination(&part.name) {
                    Some(Destination::Root) => {
                        root_writer.seek(SeekFrom::Start(0))?;
                        io::copy(data, &mut root_writer)?;
                        root_writer.flush()
                    }
                    Some(Destination::Boot(path)) => {
                        fat::write_file(&fs, slot, path, data).map(drop)
                    }
                    Some(Destination::SlotBoot { slot: s, path }) if s == slot => {
                        fat::write_file(&fs, slot, path, data).map(drop)
                    }
                    _ => io::copy(data, &mut io::sink()).map(drop),
                },
            )?;
        fs.unmount()
            .map_err(io_error("unmounting the FAT on", &devices.boot))?;
        manifest
    };
    root.sync_all().map_err(io_error("syncing", root_path))?;
    boot.sync_all()
        .map_err(io_error("syncing", &devices.boot))?;
    read_back(root_path, &manifest.parts[0])?;
    Ok(manifest)
}

/// The device's first `part.size` bytes must hash to `part.sha256`: what the medium kept, not
/// what the page cache remembers.
pub fn read_back(device: &Path, part: &Part) -> Result<(), InstallError> {
    let file = File::open(device).map_err(io_error("opening", device))?;
    drop_cached_pages(&file);
    let mut hasher = Sha256::new();
    let read = io::copy(&mut file.take(part.size), &mut hasher)
        .map_err(io_error("reading back", device))?;
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if read != part.size || hex != part.sha256 {
        return Err(InstallError::ReadBack {
            device: device.to_path_buf(),
        });
    }
    Ok(())
}

/// The written pages may still be cached: dropping them makes the hash read the medium. A
/// failure only means a cached read.
fn drop_cached_pages(file: &File) {
    let _ = nix::fcntl::posix_fadvise(
        file,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::slots::fat::tests::boot_image;
    use crate::slots::{fat, switch};
    use edge_config::artifact::{write_artifact, ArtifactHead};
    use edge_config::signing::SigningKey;
    use edge_config::system::{slot_config_txt, FORMAT};

    pub struct Disk {
        pub dir: tempfile::TempDir,
        pub devices: Devices,
        pub staged: PathBuf,
        pub root: Vec<u8>,
    }

    const ACTIVE_ROOT: &[u8] = b"the running slot's squashfs";

    pub fn system() -> SystemConfig {
        SystemConfig {
            version: "1".into(),
            board: "qemu-x86_64".into(),
            arch: "x86_64".into(),
            boot_partuuid: "boot".into(),
            root_partuuids: ["root-a".into(), "root-b".into()],
            slot_bytes: 1 << 20,
            boot_slot_bytes: 1 << 20,
            updates: true,
            public_key_file: None,
            max_update_bytes: 4 << 20,
            state_dir: "/data/system".into(),
            commit_deadline_secs: 180,
            golden_model: None,
            golden: None,
        }
    }

    pub fn key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    /// A fresh card's partitions as files, and a staged update of version 2.
    pub fn disk() -> Disk {
        let dir = tempfile::tempdir().unwrap();
        let boot = boot_image(dir.path());
        let roots = [dir.path().join("root-a"), dir.path().join("root-b")];
        std::fs::write(&roots[0], ACTIVE_ROOT).unwrap();
        std::fs::write(&roots[1], []).unwrap();
        let root: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let config = |slot| slot_config_txt("arm_64bit=1\n", slot).unwrap();
        let parts: Vec<(String, Vec<u8>)> = vec![
            ("root.squashfs".into(), root.clone()),
            ("boot/vmlinuz".into(), b"kernel 2".to_vec()),
            ("boot/overlays/x.dtbo".into(), b"overlay".to_vec()),
            ("slot-a/config.txt".into(), config("a")),
            (
                "slot-a/cmdline.txt".into(),
                b"root=PARTUUID=root-a edgeimg.slot=a".to_vec(),
            ),
            ("slot-b/config.txt".into(), config("b")),
            (
                "slot-b/cmdline.txt".into(),
                b"root=PARTUUID=root-b edgeimg.slot=b".to_vec(),
            ),
        ];
        let borrowed: Vec<(String, &[u8])> =
            parts.iter().map(|(n, b)| (n.clone(), &b[..])).collect();
        let head = ArtifactHead {
            format: FORMAT,
            name: "edge".into(),
            version: "2".into(),
            board: "qemu-x86_64".into(),
            arch: "x86_64".into(),
            boot_partuuid: "boot".into(),
            root_partuuids: ["root-a".into(), "root-b".into()],
        };
        let staged = dir.path().join("staged.update");
        write_artifact(File::create(&staged).unwrap(), head, &borrowed, &key()).unwrap();
        Disk {
            devices: Devices { boot, roots },
            staged,
            root,
            dir,
        }
    }

    pub fn boot_file(disk: &Disk, path: &str) -> Option<Vec<u8>> {
        let device = File::open(&disk.devices.boot).unwrap();
        let mut copy = std::io::Cursor::new(Vec::new());
        io::copy(&mut &device, &mut copy).unwrap();
        let fs = fat::mount(copy).unwrap();
        fat::read_file(&fs, path, 1 << 20).ok()
    }

    fn untouched(disk: &Disk) {
        assert_eq!(std::fs::read(&disk.devices.roots[0]).unwrap(), ACTIVE_ROOT);
        assert_eq!(boot_file(disk, "a/vmlinuz").unwrap(), b"kernel a");
        assert_eq!(
            switch::booted(&disk.devices.boot).unwrap().as_deref(),
            Some("a")
        );
    }

    #[test]
    fn an_update_fills_the_inactive_slot_only() {
        let disk = disk();
        let manifest = install(
            &disk.staged,
            &key().verifying_key(),
            &system(),
            "b",
            &disk.devices,
        )
        .unwrap();
        assert_eq!(manifest.version, "2");
        assert_eq!(std::fs::read(&disk.devices.roots[1]).unwrap(), disk.root);
        assert_eq!(boot_file(&disk, "b/vmlinuz").unwrap(), b"kernel 2");
        assert_eq!(boot_file(&disk, "b/overlays/x.dtbo").unwrap(), b"overlay");
        assert_eq!(
            boot_file(&disk, "b/cmdline.txt").unwrap(),
            b"root=PARTUUID=root-b edgeimg.slot=b"
        );
        assert_eq!(
            boot_file(&disk, "b/config.txt").unwrap(),
            slot_config_txt("arm_64bit=1\n", "b").unwrap()
        );
        untouched(&disk);
        // What the caller does next: the switch finds b's config.txt whole.
        switch::switch_to(&disk.devices.boot, "b").unwrap();
        assert_eq!(
            switch::booted(&disk.devices.boot).unwrap().as_deref(),
            Some("b")
        );
    }

    #[test]
    fn a_corrupt_or_truncated_artifact_leaves_the_active_side_untouched() {
        let disk = disk();
        let mut bytes = std::fs::read(&disk.staged).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        std::fs::write(&disk.staged, &bytes).unwrap();
        let e = install(
            &disk.staged,
            &key().verifying_key(),
            &system(),
            "b",
            &disk.devices,
        )
        .unwrap_err();
        assert!(e.to_string().contains("sha256"), "{e}");
        untouched(&disk);

        bytes[at] ^= 0xff;
        std::fs::write(&disk.staged, &bytes[..bytes.len() / 3]).unwrap();
        let e = install(
            &disk.staged,
            &key().verifying_key(),
            &system(),
            "b",
            &disk.devices,
        )
        .unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        untouched(&disk);

        let other = SigningKey::from_bytes(&[1; 32]).verifying_key();
        std::fs::write(&disk.staged, &bytes).unwrap();
        let e = install(&disk.staged, &other, &system(), "b", &disk.devices).unwrap_err();
        assert!(e.to_string().contains("signature"), "{e}");
        untouched(&disk);
    }

    #[test]
    fn a_root_that_reads_back_different_is_refused() {
        let disk = disk();
        let manifest = install(
            &disk.staged,
            &key().verifying_key(),
            &system(),
            "b",
            &disk.devices,
        )
        .unwrap();
        read_back(&disk.devices.roots[1], &manifest.parts[0]).unwrap();
        // The medium lost one byte of what was written.
        let mut kept = disk.root.clone();
        kept[1000] ^= 1;
        std::fs::write(&disk.devices.roots[1], &kept).unwrap();
        let e = read_back(&disk.devices.roots[1], &manifest.parts[0]).unwrap_err();
        assert!(matches!(e, InstallError::ReadBack { .. }), "{e}");
        assert!(e.to_string().contains("does not read back"), "{e}");
    }
}
