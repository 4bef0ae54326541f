//! Paths inside the image, normalised once so that nothing downstream can be tricked by them.

use std::fmt;
use std::ops::Bound;

/// A normalised path inside the image: relative to the root, no `.`/`..`/empty components.
/// The root itself is the empty path. Sorting is byte order, so parents come before children.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RootPath(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RootPathError {
    #[error("path {0:?} climbs out of the image root with `..`; archives may only name paths inside the root")]
    Escapes(String),
    #[error("path {0:?} contains a NUL byte")]
    Nul(String),
    #[error("path {0:?} is absolute; archive entries must be relative to the image root")]
    Absolute(String),
}

impl RootPath {
    pub fn root() -> Self {
        RootPath(String::new())
    }

    /// Parse a path as written inside an image (`/etc/hosts`, `etc/hosts`, `./etc/hosts/`).
    /// `..` is refused even where it would stay inside the root: a path that needs it is a
    /// path someone crafted.
    pub fn new(raw: &str) -> Result<Self, RootPathError> {
        Self::parse(raw, true)
    }

    /// Like [`RootPath::new`] but refuses absolute paths too: the rule for archive entry names.
    pub fn from_archive(raw: &str) -> Result<Self, RootPathError> {
        Self::parse(raw, false)
    }

    fn parse(raw: &str, allow_absolute: bool) -> Result<Self, RootPathError> {
        if raw.contains('\0') {
            return Err(RootPathError::Nul(raw.to_string()));
        }
        if raw.starts_with('/') && !allow_absolute {
            return Err(RootPathError::Absolute(raw.to_string()));
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(RootPathError::Escapes(raw.to_string())),
                p => parts.push(p),
            }
        }
        Ok(RootPath(parts.join("/")))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path without a leading slash (`etc/hosts`); empty for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path as the device sees it (`/etc/hosts`).
    pub fn to_absolute(&self) -> String {
        format!("/{}", self.0)
    }

    pub fn parent(&self) -> Option<RootPath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => RootPath(self.0[..i].to_string()),
            None => RootPath::root(),
        })
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    pub fn join(&self, name: &str) -> Result<RootPath, RootPathError> {
        RootPath::from_archive(&format!("{}/{}", self.0, name))
    }

    /// Every proper ancestor, root first (`a`, `a/b` for `a/b/c`; the root itself excluded).
    pub fn ancestors(&self) -> impl Iterator<Item = RootPath> + '_ {
        self.0
            .match_indices('/')
            .map(|(i, _)| RootPath(self.0[..i].to_string()))
    }

    /// Key bounds of everything strictly below this path in the tree's byte order
    /// (`d/` up to, not including, `d0`: `0` is the byte after `/`).
    pub(super) fn descendants(&self) -> (Bound<RootPath>, Bound<RootPath>) {
        if self.is_root() {
            return (Bound::Excluded(RootPath::root()), Bound::Unbounded);
        }
        (
            Bound::Included(RootPath(format!("{}/", self.0))),
            Bound::Excluded(RootPath(format!("{}0", self.0))),
        )
    }

    /// Is `self` equal to `other` or below it?
    pub fn starts_with(&self, other: &RootPath) -> bool {
        other.is_root()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for RootPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses_escapes() {
        assert_eq!(RootPath::new("/etc//hosts/").unwrap().as_str(), "etc/hosts");
        assert_eq!(RootPath::new("./usr/./bin").unwrap().as_str(), "usr/bin");
        assert!(RootPath::new("/").unwrap().is_root());
        assert_eq!(
            RootPath::new("usr/../../etc"),
            Err(RootPathError::Escapes("usr/../../etc".into()))
        );
        assert!(matches!(
            RootPath::from_archive("/etc/passwd"),
            Err(RootPathError::Absolute(_))
        ));
    }

    #[test]
    fn parents_and_ancestors() {
        let p = RootPath::new("a/b/c").unwrap();
        assert_eq!(p.parent().unwrap().as_str(), "a/b");
        let anc: Vec<_> = p.ancestors().map(|a| a.as_str().to_string()).collect();
        assert_eq!(anc, ["a", "a/b"]);
        assert!(p.starts_with(&RootPath::new("a/b").unwrap()));
        assert!(!RootPath::new("a/bc")
            .unwrap()
            .starts_with(&RootPath::new("a/b").unwrap()));
    }
}
