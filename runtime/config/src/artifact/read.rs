use std::io::{self, Read};

use sha2::{Digest, Sha256};

use super::{destination, to_hex, ArtifactError, Destination};
use crate::signing::{parse_signature, verify_for, Sha512, VerifyingKey, SYSTEM_UPDATE_CONTEXT};
use crate::system::{
    Part, SystemConfig, UpdateManifest, FORMAT, MANIFEST, MANIFEST_SIG, ROOT_MEMBER, SLOTS,
};

/// The largest `update.json` read: a Pi's boot files are a few hundred parts, well under this.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The largest `update.json.sig` read: base64 of 64 bytes is 88.
const MAX_SIGNATURE_BYTES: u64 = 1024;

/// Reads the artifact `r` as it streams: checks `update.json`'s signature with `key` before
/// anything else, refuses an update that is not for `device` before any part, then hands each
/// part to `sink` in order while hashing it.
///
/// `sink` sees a part's bytes before its size and sha256 are known to match: whatever it wrote
/// is unverified until this returns `Ok` (the caller must not boot, serve or trust it before,
/// and discards it on `Err`). A sink need not read its part to the end; the rest is hashed.
pub fn read_artifact<R: Read>(
    r: R,
    key: &VerifyingKey,
    device: &SystemConfig,
    mut sink: impl FnMut(&Part, &mut dyn Read) -> io::Result<()>,
) -> Result<UpdateManifest, ArtifactError> {
    let mut archive = tar::Archive::new(r);
    let mut entries = archive.entries().map_err(ArtifactError::Io)?;
    let manifest = read_head(&mut entries, key, device)?;
    let mut next = || entries.next().transpose().map_err(ArtifactError::Io);

    for part in &manifest.parts {
        let mut entry = next()?.ok_or_else(|| ArtifactError::MissingPart(part.name.clone()))?;
        let found = entry_name(&entry);
        if found != part.name {
            return Err(ArtifactError::OutOfOrder {
                expected: part.name.clone(),
                found,
            });
        }
        if !entry.header().entry_type().is_file() {
            return Err(ArtifactError::NotAFile(found));
        }
        let declared = entry.size();
        if declared != part.size {
            return Err(size_error(part, declared));
        }
        pass_part(part, &mut entry, &mut sink)?;
    }
    match next()? {
        Some(extra) => Err(ArtifactError::Unexpected(entry_name(&extra))),
        None => Ok(manifest),
    }
}

/// The artifact's manifest, signature-checked and checked against `device`, without reading
/// any part: what an update is, before installing it.
pub fn read_manifest<R: Read>(
    r: R,
    key: &VerifyingKey,
    device: &SystemConfig,
) -> Result<UpdateManifest, ArtifactError> {
    let mut archive = tar::Archive::new(r);
    let mut entries = archive.entries().map_err(ArtifactError::Io)?;
    read_head(&mut entries, key, device)
}

/// `update.json` and its signature: verified, then checked against `device`.
fn read_head<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    key: &VerifyingKey,
    device: &SystemConfig,
) -> Result<UpdateManifest, ArtifactError> {
    let mut next = || entries.next().transpose().map_err(ArtifactError::Io);

    let mut manifest_entry = next()?.ok_or(ArtifactError::MissingHeader { member: MANIFEST })?;
    let found = entry_name(&manifest_entry);
    if found != MANIFEST {
        return Err(ArtifactError::NotAnUpdate { found });
    }
    let json = read_small(&mut manifest_entry, MANIFEST, MAX_MANIFEST_BYTES)?;
    drop(manifest_entry);

    let mut sig_entry = next()?.ok_or(ArtifactError::MissingHeader {
        member: MANIFEST_SIG,
    })?;
    let found = entry_name(&sig_entry);
    if found != MANIFEST_SIG {
        return Err(ArtifactError::OutOfOrder {
            expected: MANIFEST_SIG.into(),
            found,
        });
    }
    let sig_text = read_small(&mut sig_entry, MANIFEST_SIG, MAX_SIGNATURE_BYTES)?;
    drop(sig_entry);
    let signature = parse_signature(&String::from_utf8_lossy(&sig_text))
        .map_err(ArtifactError::BadSignatureText)?;
    if !verify_for(
        SYSTEM_UPDATE_CONTEXT,
        key,
        Sha512::new().chain_update(&json),
        &signature,
    ) {
        return Err(ArtifactError::BadSignature);
    }

    let manifest: UpdateManifest =
        serde_json::from_slice(&json).map_err(|e| ArtifactError::BadManifest(e.to_string()))?;
    check_manifest(&manifest, device)?;
    Ok(manifest)
}

fn entry_name<R: Read>(entry: &tar::Entry<'_, R>) -> String {
    String::from_utf8_lossy(&entry.path_bytes()).into_owned()
}

fn read_small(
    r: &mut impl Read,
    member: &'static str,
    limit: u64,
) -> Result<Vec<u8>, ArtifactError> {
    let mut bytes = Vec::new();
    r.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ArtifactError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ArtifactError::HeaderTooBig { member, limit });
    }
    Ok(bytes)
}

/// Everything about the manifest that can be refused before a part's first byte.
fn check_manifest(m: &UpdateManifest, device: &SystemConfig) -> Result<(), ArtifactError> {
    if m.format != FORMAT {
        return Err(ArtifactError::Format {
            found: m.format,
            expected: FORMAT,
        });
    }
    if m.board != device.board {
        return Err(ArtifactError::Board {
            update: m.board.clone(),
            device: device.board.clone(),
        });
    }
    if m.arch != device.arch {
        return Err(ArtifactError::Arch {
            update: m.arch.clone(),
            device: device.arch.clone(),
        });
    }
    if m.boot_partuuid != device.boot_partuuid || m.root_partuuids != device.root_partuuids {
        let disk =
            |boot: &str, roots: &[String; 2]| format!("boot {boot}, roots {}", roots.join(" "));
        return Err(ArtifactError::Disk {
            update: disk(&m.boot_partuuid, &m.root_partuuids),
            device: disk(&device.boot_partuuid, &device.root_partuuids),
        });
    }
    let first = m.parts.first();
    if first.map(|p| p.name.as_str()) != Some(ROOT_MEMBER) {
        return Err(ArtifactError::RootNotFirst {
            found: first.map(|p| p.name.clone()),
        });
    }
    let mut boot_bytes = [0u64; 2];
    for (i, part) in m.parts.iter().enumerate() {
        if m.parts[..i].iter().any(|p| p.name == part.name) {
            return Err(ArtifactError::DuplicatePart(part.name.clone()));
        }
        match destination(&part.name) {
            Some(Destination::Root) if i == 0 => {}
            Some(Destination::Boot(_)) => boot_bytes.iter_mut().for_each(|b| *b += part.size),
            Some(Destination::SlotBoot { slot, .. }) => {
                boot_bytes[usize::from(slot == SLOTS[1])] += part.size
            }
            _ => return Err(ArtifactError::BadPartName(part.name.clone())),
        }
    }
    if m.parts[0].size > device.slot_bytes {
        return Err(ArtifactError::RootTooBig {
            size: m.parts[0].size,
            slot_bytes: device.slot_bytes,
        });
    }
    for (slot, size) in SLOTS.into_iter().zip(boot_bytes) {
        if size > device.boot_slot_bytes {
            return Err(ArtifactError::BootTooBig {
                slot,
                size,
                room: device.boot_slot_bytes,
            });
        }
    }
    Ok(())
}

fn size_error(part: &Part, got: u64) -> ArtifactError {
    ArtifactError::Size {
        part: part.name.clone(),
        got,
        expected: part.size,
    }
}

/// Hands one part to the sink, hashing what it reads and then the rest.
fn pass_part(
    part: &Part,
    entry: &mut dyn Read,
    sink: &mut impl FnMut(&Part, &mut dyn Read) -> io::Result<()>,
) -> Result<(), ArtifactError> {
    let mut reader = Hashing {
        inner: entry,
        hasher: Sha256::new(),
        count: 0,
        failed: false,
    };
    if let Err(e) = sink(part, &mut reader) {
        // The sink's error may be the archive's, passed on: then the update is at fault.
        return Err(if reader.failed {
            ArtifactError::Io(e)
        } else {
            ArtifactError::Sink {
                part: part.name.clone(),
                source: e,
            }
        });
    }
    io::copy(&mut reader, &mut io::sink()).map_err(ArtifactError::Io)?;
    if reader.count != part.size {
        return Err(size_error(part, reader.count));
    }
    if to_hex(&reader.hasher.finalize()) != part.sha256 {
        return Err(ArtifactError::Digest {
            part: part.name.clone(),
        });
    }
    Ok(())
}

struct Hashing<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    count: u64,
    failed: bool,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|_| self.failed = true)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
