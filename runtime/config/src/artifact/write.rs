use std::io::{self, Write};

use sha2::{Digest, Sha256};

use super::{destination, to_hex, Destination};
use crate::signing::{sign_for, Sha512, SigningKey, SYSTEM_UPDATE_CONTEXT};
use crate::system::{Part, UpdateManifest, MANIFEST, MANIFEST_SIG, ROOT_MEMBER};

/// Who the artifact is for: everything in [`UpdateManifest`] but its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactHead {
    pub format: u32,
    pub name: String,
    pub version: String,
    pub board: String,
    pub arch: String,
    pub boot_partuuid: String,
    pub root_partuuids: [String; 2],
}

/// Writes the artifact of `parts` (tar member name, bytes; [`ROOT_MEMBER`] first) signed with
/// `key`, and returns its manifest. The same inputs give the same bytes: every member has
/// mtime 0, uid and gid 0 and mode 0644.
pub fn write_artifact<W: Write>(
    out: W,
    head: ArtifactHead,
    parts: &[(String, &[u8])],
    key: &SigningKey,
) -> io::Result<UpdateManifest> {
    check_names(parts)?;
    let manifest = UpdateManifest {
        format: head.format,
        name: head.name,
        version: head.version,
        board: head.board,
        arch: head.arch,
        boot_partuuid: head.boot_partuuid,
        root_partuuids: head.root_partuuids,
        parts: parts
            .iter()
            .map(|(name, bytes)| Part {
                name: name.clone(),
                size: bytes.len() as u64,
                sha256: to_hex(&Sha256::digest(bytes)),
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    let signature = sign_for(
        SYSTEM_UPDATE_CONTEXT,
        key,
        Sha512::new().chain_update(&json),
    );
    let mut tar = tar::Builder::new(out);
    append(&mut tar, MANIFEST, &json)?;
    append(&mut tar, MANIFEST_SIG, signature.as_bytes())?;
    for (name, bytes) in parts {
        append(&mut tar, name, bytes)?;
    }
    tar.into_inner()?.flush()?;
    Ok(manifest)
}

/// The reader refuses what this would let through, so the builder finds out at build time.
fn check_names(parts: &[(String, &[u8])]) -> io::Result<()> {
    let invalid = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    if parts.first().map(|(n, _)| n.as_str()) != Some(ROOT_MEMBER) {
        return invalid(format!("an update's first part must be {ROOT_MEMBER}"));
    }
    for (i, (name, _)) in parts.iter().enumerate() {
        if i > 0 && !matches!(destination(name), Some(d) if d != Destination::Root) {
            return invalid(format!(
                "{name:?} is not a boot part (boot/<file>, slot-a/<file>, slot-b/<file>)"
            ));
        }
        if parts[..i].iter().any(|(n, _)| n == name) {
            return invalid(format!("{name:?} is listed twice"));
        }
    }
    Ok(())
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, bytes)
}
