//! `<name>.update`: the root squashfs and the boot files of a slot, with a manifest of
//! versions and sha256s signed with the recipe's update key, as the device checks it
//! (`edge_config::system::artifact`, one format for both sides).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use edge_config::artifact::{write_artifact, ArtifactHead};
use edge_config::signing;
use edge_config::system::{BOOT_PREFIX, FORMAT, ROOT_MEMBER, SLOTS, SLOT_PREFIX};

use super::{DiskPlan, SlotBoot};
use crate::plan::Plan;
use crate::rootfs::FileData;
use crate::writers::atomic::AtomicFile;

pub fn write_update(
    plan: &Plan,
    disk: &DiskPlan,
    boot: &SlotBoot,
    root: &Path,
    signing_key: &Path,
    public_key: &Path,
) -> Result<PathBuf> {
    let text = std::fs::read_to_string(signing_key).with_context(|| {
        format!(
            "reading system_updates.signing_key {} (make one with `edgeimg keygen`)",
            signing_key.display()
        )
    })?;
    let key = signing::parse_secret_key(&text).map_err(|why| {
        anyhow::anyhow!(
            "system_updates.signing_key {} {why}; give the .key file `edgeimg keygen` wrote",
            signing_key.display()
        )
    })?;
    check_pair(&key, signing_key, public_key)?;
    let root_bytes =
        std::fs::read(root).with_context(|| format!("cannot read {}", root.display()))?;
    let mut parts: Vec<(String, FileData)> = vec![(ROOT_MEMBER.to_string(), root_bytes.into())];
    for (name, data) in &boot.shared {
        parts.push((format!("{BOOT_PREFIX}{name}"), data.clone()));
    }
    for slot in SLOTS {
        for (name, data) in boot.own_files(disk, &plan.kernel.cmdline, slot)? {
            parts.push((format!("{SLOT_PREFIX}{slot}/{name}"), data));
        }
    }
    let borrowed: Vec<(String, &[u8])> = parts.iter().map(|(n, d)| (n.clone(), &d[..])).collect();
    let path = plan.out_dir.join(format!("{}.update", plan.name));
    let mut out = AtomicFile::create(&path)?;
    let mut writer = std::io::BufWriter::new(out.file());
    write_artifact(
        &mut writer,
        ArtifactHead {
            format: FORMAT,
            name: plan.name.clone(),
            version: plan.version.clone(),
            board: plan.board.name().to_string(),
            arch: plan.arch.to_string(),
            boot_partuuid: disk.boot_partuuid.clone(),
            root_partuuids: disk.root_partuuids.clone(),
        },
        &borrowed,
        &key,
    )
    .and_then(|_| writer.flush())
    .with_context(|| format!("cannot write {}", path.display()))?;
    drop(writer);
    out.commit()?;
    Ok(path)
}

/// The secret key must be the one whose public half the image carries: otherwise every update
/// it signs is refused by the devices, which is found only in the field.
fn check_pair(key: &signing::SigningKey, key_file: &Path, public_key: &Path) -> Result<()> {
    let public = std::fs::read_to_string(public_key)
        .ok()
        .and_then(|text| signing::parse_public_key(&text).ok());
    if public != Some(key.verifying_key()) {
        anyhow::bail!(
            "system_updates.signing_key {} is not the secret half of public_key {}: the device would refuse every update it signs; give the .key and .pub that one `edgeimg keygen` wrote",
            key_file.display(),
            public_key.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signing_key_from_another_pair_is_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, theirs) = (dir.path().join("ours"), dir.path().join("theirs"));
        let (our_key, our_pub) = crate::update::keygen(&ours).unwrap();
        let (_, their_pub) = crate::update::keygen(&theirs).unwrap();
        let key = signing::parse_secret_key(&std::fs::read_to_string(&our_key).unwrap()).unwrap();
        check_pair(&key, &our_key, &our_pub).unwrap();
        let e = check_pair(&key, &our_key, &their_pub)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ours.key") && e.contains("theirs.pub"), "{e}");
        assert!(e.contains("not the secret half"), "{e}");
    }
}
