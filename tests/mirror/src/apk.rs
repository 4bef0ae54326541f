//! Writes a v2 `.apk`: three concatenated gzip members, as abuild produces them:
//! (1) signature tar (cut) with `.SIGN.RSA256.<key>` over member (2);
//! (2) control tar (cut) with `.PKGINFO` and install scripts, `datahash` = SHA-256 of (3);
//! (3) data tar (complete) of the package's files, each with an `APK-TOOLS.checksum.SHA1`
//!     PAX record like `abuild-tar --hash` adds.

use crate::package::{Entry, EntryKind, PackageContent, PackageMeta};
use crate::pkginfo;
use crate::signing::Signer;
use crate::tarball::{gzip, gzip_writer, TarWriter};
use anyhow::{Context, Result};
use base64::Engine as _;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;

/// What the index needs to know about a written package.
#[derive(Debug, Clone)]
pub struct WrittenApk {
    pub meta: PackageMeta,
    pub file_name: String,
    pub size: u64,
    /// SHA-1 of the control gzip member: the package identity (`C:Q1...` in APKINDEX).
    pub control_sha1: [u8; 20],
    /// Files whose content differs from Alpine's recorded checksum (changed after install).
    pub changed_files: Vec<String>,
}

impl WrittenApk {
    pub fn identity(&self) -> String {
        format!(
            "Q1{}",
            base64::engine::general_purpose::STANDARD.encode(self.control_sha1)
        )
    }
}

pub fn write_apk(pkg: &PackageContent, signer: &Signer, out_dir: &Path) -> Result<WrittenApk> {
    let what = format!("{}-{}", pkg.meta.name, pkg.meta.version);
    let (data, changed_files) =
        data_stream(pkg).with_context(|| format!("writing the data of {what}"))?;
    let datahash = hex::encode(Sha256::digest(&data));

    let mut control = TarWriter::new(Vec::new(), pkg.meta.build_time);
    let info = pkginfo::render(&pkg.meta, &datahash);
    control.file(".PKGINFO", 0o644, 0, 0, info.len() as u64, info.as_bytes())?;
    for script in &pkg.scripts {
        let name = format!(".{}", script.action);
        control.file(
            &name,
            0o755,
            0,
            0,
            script.body.len() as u64,
            script.body.as_slice(),
        )?;
    }
    let apk = assemble(&control.finish_cut()?, data, |control| {
        signer.signature_stream(control, pkg.meta.build_time)
    })?;

    let file_name = pkg.meta.file_name();
    let path = out_dir.join(&file_name);
    fs::write(&path, &apk.bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(WrittenApk {
        meta: pkg.meta.clone(),
        file_name,
        size: apk.bytes.len() as u64,
        control_sha1: apk.control_sha1,
        changed_files,
    })
}

/// A package's bytes and identity.
pub struct Assembled {
    pub bytes: Vec<u8>,
    /// SHA-1 of the control gzip member (`C:Q1...` in APKINDEX, once base64'd).
    pub control_sha1: [u8; 20],
}

/// The one place a v2 `.apk` is laid out: `signature` (what `sign` makes of the control gzip
/// member), then gzip(`control_tar`, a cut tar with `.PKGINFO` first), then `data_gz` (the
/// gzip'd data tar, whose SHA-256 `.PKGINFO` must carry as `datahash`). The tests build hostile
/// packages through it too, with their own control, data and signatures.
pub fn assemble(
    control_tar: &[u8],
    data_gz: Vec<u8>,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Assembled> {
    let control = gzip(control_tar)?;
    let signature = sign(&control)?;
    Ok(Assembled {
        control_sha1: Sha1::digest(&control).into(),
        bytes: [signature, control, data_gz].concat(),
    })
}

fn data_stream(pkg: &PackageContent) -> Result<(Vec<u8>, Vec<String>)> {
    let mut tar = TarWriter::new(gzip_writer(), pkg.meta.build_time);
    let mut changed = Vec::new();
    for entry in &pkg.entries {
        let Entry {
            path,
            mode,
            uid,
            gid,
            ..
        } = entry;
        match &entry.kind {
            EntryKind::Dir => tar.dir(path, *mode, *uid, *gid)?,
            EntryKind::File(source) => {
                let content =
                    fs::read(source).with_context(|| format!("reading {}", source.display()))?;
                let sha1: [u8; 20] = Sha1::digest(&content).into();
                note_change(entry, &sha1, &mut changed);
                tar.pax(&[("APK-TOOLS.checksum.SHA1", hex::encode(sha1).as_bytes())])?;
                tar.file(
                    path,
                    *mode,
                    *uid,
                    *gid,
                    content.len() as u64,
                    content.as_slice(),
                )?;
            }
            EntryKind::Symlink(target) => {
                let sha1: [u8; 20] = Sha1::digest(target.as_bytes()).into();
                note_change(entry, &sha1, &mut changed);
                tar.pax(&[("APK-TOOLS.checksum.SHA1", hex::encode(sha1).as_bytes())])?;
                tar.symlink(path, target, *mode, *uid, *gid)?;
            }
        }
    }
    Ok((tar.finish()?.finish()?, changed))
}

fn note_change(entry: &Entry, sha1: &[u8; 20], changed: &mut Vec<String>) {
    if let Some(expected) = &entry.expected_checksum {
        let actual = format!(
            "Q1{}",
            base64::engine::general_purpose::STANDARD.encode(sha1)
        );
        if *expected != actual {
            changed.push(entry.path.clone());
        }
    }
}
