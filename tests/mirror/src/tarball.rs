//! Tar and gzip helpers shaped like abuild's output: ustar headers, root-owned entries,
//! fixed mtimes, and "cut" tars (no end-of-archive blocks) for streams that apk-tools reads
//! as one tar spanning several gzip members.

use anyhow::{bail, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{Read, Write};

pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    mtime: u64,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W, mtime: u64) -> Self {
        TarWriter {
            builder: tar::Builder::new(out),
            mtime,
        }
    }

    /// Paths that do not fit ustar's name + prefix fields would need a GNU long-name entry.
    fn check_path(path: &str) -> Result<()> {
        if tar::Header::new_ustar().set_path(path).is_err() {
            bail!("{path}: path too long for a ustar header (255 bytes, split at a '/')");
        }
        Ok(())
    }

    fn header(
        &self,
        kind: tar::EntryType,
        mode: u32,
        uid: u32,
        gid: u32,
        size: u64,
    ) -> tar::Header {
        // ustar: paths over 100 bytes go to the prefix field, which apk-tools reads; the GNU
        // long-name entries the tar crate would emit otherwise separate a file from its PAX
        // checksum record.
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        header.set_mtime(self.mtime);
        header.set_size(size);
        if uid == 0 {
            let _ = header.set_username("root");
        }
        if gid == 0 {
            let _ = header.set_groupname("root");
        }
        header
    }

    /// PAX records for the next entry (apk-tools reads `APK-TOOLS.checksum.SHA1`). Written by
    /// hand because the tar crate's PAX headers have an empty name, which apk-tools' parser
    /// takes for an end-of-archive block.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> Result<()> {
        let mut data = Vec::new();
        for (key, value) in records {
            // The length prefix counts itself: "<len> <key>=<value>\n".
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut header = self.header(tar::EntryType::XHeader, 0o644, 0, 0, data.len() as u64);
        self.builder
            .append_data(&mut header, "PaxHeader", data.as_slice())?;
        Ok(())
    }

    pub fn file(
        &mut self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        size: u64,
        data: impl Read,
    ) -> Result<()> {
        Self::check_path(path)?;
        let mut header = self.header(tar::EntryType::Regular, mode, uid, gid, size);
        self.builder.append_data(&mut header, path, data)?;
        Ok(())
    }

    pub fn dir(&mut self, path: &str, mode: u32, uid: u32, gid: u32) -> Result<()> {
        Self::check_path(path)?;
        let mut header = self.header(tar::EntryType::Directory, mode, uid, gid, 0);
        self.builder
            .append_data(&mut header, format!("{path}/"), std::io::empty())?;
        Ok(())
    }

    pub fn symlink(
        &mut self,
        path: &str,
        target: &str,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<()> {
        Self::check_path(path)?;
        let mut header = self.header(tar::EntryType::Symlink, mode, uid, gid, 0);
        self.builder.append_link(&mut header, path, target)?;
        Ok(())
    }

    /// A complete tar, with the two zero blocks that end an archive.
    pub fn finish(self) -> Result<W> {
        Ok(self.builder.into_inner()?)
    }
}

impl TarWriter<Vec<u8>> {
    /// A tar without its end-of-archive blocks, as `abuild-tar --cut` writes.
    pub fn finish_cut(self) -> Result<Vec<u8>> {
        let mut bytes = self.builder.into_inner()?;
        let end = bytes.len().saturating_sub(1024);
        if bytes.len() < 1024 || bytes[end..].iter().any(|&b| b != 0) {
            bail!("internal error: tar stream does not end with an end-of-archive marker");
        }
        bytes.truncate(end);
        Ok(bytes)
    }
}

/// One gzip member without a file name or timestamp (`gzip -n`), so output is reproducible.
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// A gzip writer for large streams; level 6 trades a little size for much less time.
pub fn gzip_writer() -> GzEncoder<Vec<u8>> {
    GzEncoder::new(Vec::new(), Compression::default())
}
