//! Models the recipe downloads (`url` + `sha256`, `member` for a file inside a wheel, zip or
//! tar): fetched once into `<cache>/models/<sha256>/`, verified against the pin on every build,
//! and the member unpacked from the verified archive beside it.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::packages::source::Location;
use crate::packages::Progress;
use crate::writers::atomic::AtomicFile;

/// The most a model download (or the member taken from it) may be: larger files are refused
/// rather than filling the memory.
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// Where a model comes from when the recipe gives `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDownload {
    pub url: String,
    /// sha256 of the downloaded file (the archive, with `member`).
    pub sha256: String,
    pub member: Option<String>,
}

impl ModelDownload {
    /// The cached model file this download yields (the file edgeimg reads when building).
    pub fn model_path(&self, cache_dir: &Path) -> PathBuf {
        let dir = self.dir(cache_dir);
        match &self.member {
            Some(member) => dir.join("members").join(safe_relative(member)),
            None => dir.join(file_name(&self.url)),
        }
    }

    fn dir(&self, cache_dir: &Path) -> PathBuf {
        cache_dir.join("models").join(&self.sha256)
    }

    /// Download (unless cached), verify, and unpack the member: afterwards
    /// [`model_path`](Self::model_path) holds the model.
    pub fn ensure(&self, cache_dir: &Path, progress: &Progress) -> Result<PathBuf> {
        let download = self.dir(cache_dir).join(file_name(&self.url));
        let bytes = self.verified_download(&download, progress)?;
        let Some(member) = &self.member else {
            return Ok(download);
        };
        let dest = self.model_path(cache_dir);
        let data = read_member(&bytes, member).with_context(|| {
            format!(
                "model member {member:?} of {} ({})",
                self.url,
                download.display()
            )
        })?;
        let unchanged = std::fs::read(&dest).is_ok_and(|cached| cached == data);
        if !unchanged {
            std::fs::create_dir_all(dest.parent().expect("member path has a folder"))?;
            let mut out = AtomicFile::create(&dest)?;
            std::io::Write::write_all(out.file(), &data)?;
            out.commit()?;
        }
        Ok(dest)
    }

    fn verified_download(&self, path: &Path, progress: &Progress) -> Result<Vec<u8>> {
        if let Ok(bytes) = std::fs::read(path) {
            if sha256_hex(&bytes) == self.sha256 {
                return Ok(bytes);
            }
            // A damaged cache entry is replaced by a fresh download, verified the same way.
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the damaged {}", path.display()))?;
        }
        let location =
            Location::parse(&self.url).with_context(|| format!("model url {:?}", self.url))?;
        let bytes = location
            .read(
                &format!("model {}", file_name(&self.url)),
                progress,
                MAX_MODEL_BYTES,
            )
            .with_context(|| format!("cannot fetch the model from {}", self.url))?;
        let got = sha256_hex(&bytes);
        if got != self.sha256 {
            bail!(
                "{} has sha256 {got}, but the recipe pins {}; the file changed or the pin is wrong (if the new file is intended, update the model's sha256)",
                self.url,
                self.sha256
            );
        }
        std::fs::create_dir_all(path.parent().expect("cache path has a folder"))?;
        let mut out = AtomicFile::create(path)?;
        std::io::Write::write_all(out.file(), &bytes)?;
        out.commit()?;
        Ok(bytes)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The last path segment of a URL or path, without a query; "download" when there is none.
fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && name != ".." && name != "." => name.to_string(),
        _ => "download".into(),
    }
}

/// A member name as a relative path with no `..`, so it cannot leave the cache folder.
fn safe_relative(member: &str) -> PathBuf {
    member
        .split('/')
        .filter(|part| !part.is_empty() && *part != "." && *part != "..")
        .collect()
}

/// `member` of a zip (wheels are zips) or a tar, plain or gzip-compressed.
fn read_member(archive: &[u8], member: &str) -> Result<Vec<u8>> {
    let member = member.trim_start_matches("./");
    if archive.starts_with(b"PK\x03\x04") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive))
            .context("the download is not a readable zip/wheel")?;
        let names: Vec<String> = zip
            .file_names()
            .filter_map(|name| name.ok().map(|n| n.into_owned()))
            .collect();
        let mut file = match zip.by_name(member) {
            Ok(file) => file,
            Err(_) => bail!("{}", not_found(member, &names)),
        };
        return read_bounded(&mut file);
    }
    let reader: Box<dyn Read + '_> = if archive.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(archive))
    } else if archive.len() > 262 && &archive[257..262] == b"ustar" {
        Box::new(archive)
    } else {
        bail!("the download is neither a zip/wheel nor a tar (.tar, .tar.gz), so it has no member to take; drop `member` if the url is the model itself");
    };
    let mut tar = tar::Archive::new(reader);
    let mut names = Vec::new();
    for entry in tar
        .entries()
        .context("the download is not a readable tar")?
    {
        let mut entry = entry.context("the download is not a readable tar")?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name.trim_start_matches("./") == member && entry.header().entry_type().is_file() {
            return read_bounded(&mut entry);
        }
        names.push(name);
    }
    bail!("{}", not_found(member, &names))
}

fn read_bounded(reader: &mut impl Read) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    reader
        .take(MAX_MODEL_BYTES + 1)
        .read_to_end(&mut data)
        .context("cannot unpack the member")?;
    if data.len() as u64 > MAX_MODEL_BYTES {
        bail!(
            "the member is larger than {}, the most edgeimg reads for a model",
            bytesize::ByteSize::b(MAX_MODEL_BYTES)
        );
    }
    Ok(data)
}

/// Names the archive's `.onnx` files (or a few of its files), so a typo is easy to fix.
fn not_found(member: &str, names: &[String]) -> String {
    let onnx: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.ends_with(".onnx"))
        .collect();
    let shown: Vec<&str> = if onnx.is_empty() {
        names.iter().take(10).map(String::as_str).collect()
    } else {
        onnx
    };
    format!("the archive has no file {member:?}; it holds {shown:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, data).unwrap();
        zip.finish().unwrap();
        out.into_inner()
    }

    fn tar_gz_with(name: &str, data: &[u8]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, data).unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn download_of(dir: &Path, archive: &[u8], member: Option<&str>) -> ModelDownload {
        let file = dir.join("pkg.whl");
        std::fs::write(&file, archive).unwrap();
        ModelDownload {
            url: file.display().to_string(),
            sha256: sha256_hex(archive),
            member: member.map(str::to_string),
        }
    }

    #[test]
    fn a_member_of_a_wheel_or_a_tar_is_unpacked_into_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        for archive in [
            zip_with("pkg/models/det.onnx", b"onnx bytes"),
            tar_gz_with("pkg/models/det.onnx", b"onnx bytes"),
        ] {
            let cache = tempfile::tempdir().unwrap();
            let d = download_of(dir.path(), &archive, Some("pkg/models/det.onnx"));
            let path = d.ensure(cache.path(), &Progress::hidden()).unwrap();
            assert_eq!(path, d.model_path(cache.path()));
            assert_eq!(std::fs::read(&path).unwrap(), b"onnx bytes");
            // Cached: the source may go away.
            std::fs::remove_file(dir.path().join("pkg.whl")).unwrap();
            d.ensure(cache.path(), &Progress::hidden()).unwrap();
        }
    }

    #[test]
    fn a_wrong_pin_or_member_is_refused_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let archive = zip_with("pkg/models/det.onnx", b"onnx bytes");
        let mut d = download_of(dir.path(), &archive, Some("pkg/models/rec.onnx"));
        let err = format!(
            "{:#}",
            d.ensure(cache.path(), &Progress::hidden()).unwrap_err()
        );
        assert!(err.contains("no file \"pkg/models/rec.onnx\""), "{err}");
        assert!(err.contains("pkg/models/det.onnx"), "{err}");
        d.sha256 = "0".repeat(64);
        let err = format!(
            "{:#}",
            d.ensure(cache.path(), &Progress::hidden()).unwrap_err()
        );
        assert!(err.contains("but the recipe pins"), "{err}");
        assert!(!d.model_path(cache.path()).exists());
    }

    #[test]
    fn a_damaged_cached_download_is_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let d = download_of(dir.path(), b"the model itself", None);
        let path = d.ensure(cache.path(), &Progress::hidden()).unwrap();
        std::fs::write(&path, b"damaged").unwrap();
        let path = d.ensure(cache.path(), &Progress::hidden()).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"the model itself");
    }

    #[test]
    fn member_paths_stay_inside_the_cache() {
        assert_eq!(
            safe_relative("../../etc/x.onnx"),
            PathBuf::from("etc/x.onnx")
        );
        assert_eq!(file_name("https://h/a/b.whl?x=1"), "b.whl");
    }
}
