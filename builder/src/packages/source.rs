//! Where repository files come from: https (rustls, no OpenSSL; see `download` for timeouts,
//! retries and resume) or a local folder (`/path` or `file:///path`), read the same way so a
//! local mirror behaves like a remote one.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::progress::Progress;

/// A repository base location, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Http(String),
    Local(PathBuf),
}

impl Location {
    pub fn parse(base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/');
        if base.starts_with("https://") || base.starts_with("http://") {
            Ok(Location::Http(base.to_string()))
        } else if let Some(path) = base.strip_prefix("file://") {
            Ok(Location::Local(PathBuf::from(path)))
        } else if base.starts_with('/') || base.starts_with('.') {
            Ok(Location::Local(PathBuf::from(base)))
        } else {
            bail!("repository {base:?} is neither an https:// URL nor a local folder (/path or file:///path)")
        }
    }

    /// The location of `rel` (slash-separated) under this base, for messages and fetching.
    pub fn join(&self, rel: &str) -> Location {
        match self {
            Location::Http(url) => Location::Http(format!("{url}/{rel}")),
            Location::Local(dir) => Location::Local(dir.join(rel)),
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Location::Http(_))
    }

    /// Read the whole file, with a progress bar for downloads; a file larger than `limit`
    /// bytes is refused (a server must not be able to fill the memory).
    pub fn read(&self, label: &str, progress: &Progress, limit: u64) -> Result<Vec<u8>> {
        let bytes = match self {
            Location::Local(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                read_limited(file, limit)
                    .with_context(|| format!("cannot read {}", path.display()))?
            }
            Location::Http(url) => super::download::download(url, label, progress, limit)?,
        };
        if bytes.len() as u64 > limit {
            bail!(
                "{self} is larger than {}, the most edgeimg reads for {label}",
                bytesize::ByteSize::b(limit)
            );
        }
        Ok(bytes)
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Http(url) => f.write_str(url),
            Location::Local(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Up to `limit + 1` bytes: one more than allowed says the file is too large.
fn read_limited(reader: impl Read, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bases() {
        assert_eq!(
            Location::parse("https://dl-cdn.alpinelinux.org/alpine/").unwrap(),
            Location::Http("https://dl-cdn.alpinelinux.org/alpine".into())
        );
        assert_eq!(
            Location::parse("file:///srv/mirror").unwrap(),
            Location::Local("/srv/mirror".into())
        );
        assert_eq!(
            Location::parse("/srv/m")
                .unwrap()
                .join("v3.23/main")
                .to_string(),
            "/srv/m/v3.23/main"
        );
        let err = Location::parse("ftp.example.org").unwrap_err().to_string();
        assert!(
            err.contains("neither an https:// URL nor a local folder"),
            "{err}"
        );
    }
}
