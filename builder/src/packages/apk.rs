//! An .apk file: gzip streams [signature], control (`.PKGINFO`, scripts), data (the files).
//! Verifies each stream against what the signed index and `.PKGINFO` promise.

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Range;

use anyhow::{bail, Context, Result};
use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::gzip;
use super::index::IndexEntry;
use super::signature::{self, Keyring};

/// An install/upgrade/remove script from the control stream (`.post-install`, `.trigger`...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Script {
    /// `post-install`, `trigger`, ...
    pub kind: String,
    pub body: Vec<u8>,
    pub mtime: u64,
}

/// A parsed, verified .apk.
#[derive(Debug)]
pub struct ApkFile {
    /// `.PKGINFO` key/values in file order (keys may repeat: `depend`, `provides`...).
    pub pkginfo: Vec<(String, String)>,
    pub scripts: Vec<Script>,
    /// The decompressed data tar; files in the tree are slices of it.
    pub data_tar: bytes::Bytes,
    /// Which trusted key signed the package itself, if it carries a signature stream.
    pub signed_by: Option<String>,
}

impl ApkFile {
    pub fn pkginfo_values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pkginfo
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `Q1` + base64(sha1), the form apk uses in indexes and the installed db.
pub fn q1(sha1: &[u8]) -> String {
    format!(
        "Q1{}",
        base64::engine::general_purpose::STANDARD.encode(sha1)
    )
}

/// The 20 SHA-1 bytes inside a `Q1...` checksum, or None if it is not one.
pub fn q1_bytes(checksum: &str) -> Option<Vec<u8>> {
    let b64 = checksum.strip_prefix("Q1")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (bytes.len() == 20).then_some(bytes)
}

/// The most each stream of an .apk may unpack to. The largest real Alpine packages unpack to a
/// few hundred MB (linux-rpi: 333 MB of files); a signature stream is a few hundred bytes and a
/// control stream (`.PKGINFO` and scripts) a few KB.
pub const MAX_SIGNATURE_BYTES: u64 = 1 << 20;
pub const MAX_CONTROL_BYTES: u64 = 16 << 20;
pub const MAX_DATA_BYTES: u64 = 1 << 30;

/// Split and verify an .apk against its index entry: the control stream's SHA-1 must be the
/// index's `C:`, the data stream's SHA-256 the `.PKGINFO` `datahash`, and a signature stream,
/// if present, must be by a trusted key. `what` names the package and file in errors.
///
/// Each stream is unpacked only up to its cap, and the data stream (the only large one) only
/// once its compressed bytes have matched the datahash.
pub fn open_verified(
    bytes: &[u8],
    entry: &IndexEntry,
    keyring: &Keyring,
    what: &str,
) -> Result<ApkFile> {
    let corrupt = || format!("{what} is corrupt");
    let mut members = gzip::Members::new(bytes);
    let first = members
        .next_member(MAX_CONTROL_BYTES)
        .with_context(corrupt)?
        .with_context(|| format!("{what} is empty"))?;
    // As apk decides: the first stream is a signature when it holds `.SIGN.*` entries.
    let signatures = signature::read_signatures(&first.data, what)?;
    let (sig_member, control) = if signatures.is_empty() {
        (None, first)
    } else {
        if first.data.len() as u64 > MAX_SIGNATURE_BYTES {
            bail!(
                "{what}: the signature stream unpacks to {} bytes; real ones are a few hundred (the most accepted is {})",
                first.data.len(),
                bytesize::ByteSize::b(MAX_SIGNATURE_BYTES)
            );
        }
        let control = members
            .next_member(MAX_CONTROL_BYTES)
            .with_context(corrupt)?;
        (
            Some(signatures),
            control.with_context(|| no_stream(what, "control"))?,
        )
    };
    let control_bytes = &bytes[control.compressed.clone()];
    let want = q1_bytes(&entry.checksum).with_context(|| {
        format!(
            "{what}: the index gives no usable checksum (C:{:?}); cannot verify the package",
            entry.checksum
        )
    })?;
    let got = Sha1::digest(control_bytes);
    if got.as_slice() != want.as_slice() {
        bail!(
            "{what}: control checksum mismatch: the index says {}, the file has {}",
            entry.checksum,
            q1(&got)
        );
    }
    let signed_by = match sig_member {
        Some(sigs) => Some(keyring.verify(&sigs, control_bytes, what)?),
        None => None,
    };
    let (pkginfo, scripts) =
        read_control(&control.data).with_context(|| format!("{what}: control stream"))?;
    let mut apk = ApkFile {
        pkginfo,
        scripts,
        data_tar: bytes::Bytes::new(),
        signed_by,
    };
    if members.is_done() {
        bail!("{}", no_stream(what, "data"));
    }
    check_datahash(&apk, &bytes[members.rest()], members.rest(), what)?;
    check_identity(&apk, entry, what)?;
    let data = members
        .next_member(MAX_DATA_BYTES)
        .with_context(|| format!("{what}: data stream"))?
        .with_context(|| no_stream(what, "data"))?;
    if !members.is_done() {
        bail!(
            "{what} has more gzip streams after its data (from byte {}); an .apk has 3 (signature, control, data) or 2 (unsigned)",
            members.rest().start
        );
    }
    apk.data_tar = data.data.into();
    Ok(apk)
}

fn no_stream(what: &str, kind: &str) -> String {
    format!("{what} has no {kind} stream; an .apk has 3 gzip streams (signature, control, data) or 2 (unsigned)")
}

fn check_datahash(apk: &ApkFile, data_bytes: &[u8], range: Range<usize>, what: &str) -> Result<()> {
    let want = apk.pkginfo_values("datahash").next().with_context(|| {
        format!("{what}: .PKGINFO has no datahash; cannot verify the file contents")
    })?;
    let got = hex::encode(Sha256::digest(data_bytes));
    if !got.eq_ignore_ascii_case(want.trim()) {
        bail!(
            "{what}: data checksum mismatch (bytes {}..{}): .PKGINFO datahash is {want}, the data stream hashes to {got}",
            range.start,
            range.end
        );
    }
    Ok(())
}

/// The package must be the one the index described (guards against a swapped file whose own
/// hashes are self-consistent but which the checksum already pinned; cheap, clearer errors).
fn check_identity(apk: &ApkFile, entry: &IndexEntry, what: &str) -> Result<()> {
    let field = |k: &str| {
        apk.pkginfo_values(k)
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let (name, version) = (field("pkgname"), field("pkgver"));
    if name != entry.name || version != entry.version {
        bail!(
            "{what}: .PKGINFO says {name}-{version}, the index says {}",
            entry.name_version()
        );
    }
    Ok(())
}

type Control = (Vec<(String, String)>, Vec<Script>);

fn read_control(tar_bytes: &[u8]) -> Result<Control> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut pkginfo = None;
    let mut scripts = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mtime = entry.header().mtime().unwrap_or(0);
        let script = name
            .strip_prefix('.')
            .filter(|kind| SCRIPT_KINDS.contains(kind));
        if name != ".PKGINFO" && script.is_none() {
            continue;
        }
        let body = read_regular(&mut entry).with_context(|| format!("entry {name:?}"))?;
        match script {
            None => {
                let text = String::from_utf8(body).context(".PKGINFO is not UTF-8")?;
                pkginfo = Some(parse_pkginfo(&text));
            }
            Some(kind) => scripts.push(Script {
                kind: kind.to_string(),
                body,
                mtime,
            }),
        }
    }
    Ok((pkginfo.context("no .PKGINFO")?, scripts))
}

/// The body of a regular tar entry (see [`regular_only`]). What is read is bounded by the
/// archive itself (already capped), never by the size a header claims.
pub fn read_regular<R: Read>(entry: &mut tar::Entry<'_, R>) -> std::io::Result<Vec<u8>> {
    regular_only(entry.header().entry_type())?;
    let mut body = Vec::new();
    entry.read_to_end(&mut body)?;
    archive_holds(entry.size(), body.len() as u64)?;
    Ok(body)
}

/// Only a regular entry is read; other kinds are refused: a GNU sparse entry reads as however
/// many zeros its header claims.
pub fn regular_only(kind: tar::EntryType) -> std::io::Result<()> {
    if matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
        return Ok(());
    }
    Err(invalid_data(format!(
        "it is a {kind:?} entry where only a regular file may be"
    )))
}

/// An entry's body must be as long as its header claims (`held`: what the archive has).
pub fn archive_holds(claimed: u64, held: u64) -> std::io::Result<()> {
    if held >= claimed {
        return Ok(());
    }
    Err(invalid_data(format!(
        "its header claims {claimed} bytes but the archive ends after {held}"
    )))
}

fn invalid_data(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

const SCRIPT_KINDS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-upgrade",
    "post-upgrade",
    "pre-deinstall",
    "post-deinstall",
    "trigger",
];

/// `key = value` lines; `#` comments.
fn parse_pkginfo(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// Extended attributes from pax `SCHILY.xattr.*` records.
pub fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut xattrs = BTreeMap::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
            }
        }
    }
    Ok(xattrs)
}

/// The `APK-TOOLS.checksum.SHA1` pax record (hex), which the installed db stores as `Z:Q1...`.
pub fn pax_sha1<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<Vec<u8>>> {
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if ext.key().ok() == Some("APK-TOOLS.checksum.SHA1") {
                return Ok(ext.value().ok().and_then(|v| hex::decode(v.trim()).ok()));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q1_round_trip() {
        let sha = Sha1::digest(b"x");
        let s = q1(&sha);
        assert!(s.starts_with("Q1") && s.len() == 30, "{s}");
        assert_eq!(q1_bytes(&s).unwrap(), sha.to_vec());
        assert_eq!(
            q1_bytes("Q1VFqm8pEgmviZMrdh2eQiwneFlsw=").unwrap().len(),
            20
        );
        assert!(q1_bytes("Q2abc").is_none());
    }

    #[test]
    fn pkginfo_lines() {
        let p = parse_pkginfo("# Generated by abuild\npkgname = busybox\npkgver = 1.37.0-r30\ndepend = so:libc.musl-x86_64.so.1\ndatahash = ab12\n");
        assert_eq!(p[0], ("pkgname".into(), "busybox".into()));
        assert_eq!(p.len(), 4);
    }
}
