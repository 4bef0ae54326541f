//! The APKINDEX text format: one block of `K:value` lines per package, blocks separated by
//! blank lines. The same format (plus file lines) is `/lib/apk/db/installed`.

use super::dependency::{Dependency, DependencyError};

/// One package as an index describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// `C:`: `Q1` + base64 of the SHA-1 of the package's control (second gzip) stream.
    pub checksum: String,
    pub name: String,
    pub version: String,
    pub arch: String,
    /// `S:`: size of the .apk file.
    pub size: u64,
    /// `I:`: size once installed.
    pub installed_size: u64,
    pub description: String,
    pub url: String,
    pub license: String,
    pub origin: String,
    pub maintainer: String,
    pub build_time: Option<u64>,
    pub commit: String,
    pub depends: Vec<Dependency>,
    pub provides: Vec<Dependency>,
    pub install_if: Vec<Dependency>,
    /// `k:`: which provider of a virtual name wins when several could.
    pub provider_priority: Option<u32>,
    /// `r:` and `q:` (installed db): packages whose files this one may overwrite.
    pub replaces: Vec<Dependency>,
    pub replaces_priority: Option<u32>,
}

impl IndexEntry {
    /// `name-version`, as in file names and messages.
    pub fn name_version(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// A parsed APKINDEX (or installed db): its packages in file order.
#[derive(Debug, Clone, Default)]
pub struct ApkIndex {
    /// The `DESCRIPTION` file of the index tarball, e.g. `v3.23.0-123-g...`.
    pub description: String,
    pub entries: Vec<IndexEntry>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("line {line}: expected `K:value`, found {text:?}")]
    NotAField { line: usize, text: String },
    #[error("line {line}: field {key}: {value:?} is not a number")]
    NotANumber {
        line: usize,
        key: char,
        value: String,
    },
    #[error("line {line}: field {key}: {source}")]
    BadDependency {
        line: usize,
        key: char,
        source: DependencyError,
    },
    #[error("package entry starting at line {line} has no {what} (`{key}:` line)")]
    Missing {
        line: usize,
        what: &'static str,
        key: char,
    },
}

impl ApkIndex {
    /// Parse index text. Unknown single-letter fields (and the installed db's file lines) are
    /// skipped, as apk does, so newer indexes still parse.
    pub fn parse(text: &str) -> Result<Self, IndexError> {
        let mut entries = Vec::new();
        let mut current: Option<(usize, IndexEntry)> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.trim().is_empty() {
                if let Some((start, entry)) = current.take() {
                    entries.push(finish(start, entry)?);
                }
                continue;
            }
            let mut chars = raw.chars();
            let (Some(key), Some(':')) = (chars.next(), chars.next()) else {
                return Err(IndexError::NotAField {
                    line,
                    text: raw.to_string(),
                });
            };
            let value = chars.as_str();
            let entry = &mut current
                .get_or_insert_with(|| (line, IndexEntry::default()))
                .1;
            set_field(entry, key, value, line)?;
        }
        if let Some((start, entry)) = current.take() {
            entries.push(finish(start, entry)?);
        }
        Ok(ApkIndex {
            description: String::new(),
            entries,
        })
    }
}

fn finish(start: usize, entry: IndexEntry) -> Result<IndexEntry, IndexError> {
    let missing = |what, key| IndexError::Missing {
        line: start,
        what,
        key,
    };
    if entry.name.is_empty() {
        return Err(missing("package name", 'P'));
    }
    if entry.version.is_empty() {
        return Err(missing("version", 'V'));
    }
    Ok(entry)
}

fn set_field(e: &mut IndexEntry, key: char, value: &str, line: usize) -> Result<(), IndexError> {
    let number = |v: &str| {
        v.trim().parse::<u64>().map_err(|_| IndexError::NotANumber {
            line,
            key,
            value: v.to_string(),
        })
    };
    let deps = |v: &str| {
        Dependency::parse_list(v).map_err(|source| IndexError::BadDependency { line, key, source })
    };
    let text = value.to_string();
    match key {
        'C' => e.checksum = text,
        'P' => e.name = text,
        'V' => e.version = text,
        'A' => e.arch = text,
        'S' => e.size = number(value)?,
        'I' => e.installed_size = number(value)?,
        'T' => e.description = text,
        'U' => e.url = text,
        'L' => e.license = text,
        'o' => e.origin = text,
        'm' => e.maintainer = text,
        't' => e.build_time = Some(number(value)?),
        'c' => e.commit = text,
        'D' => e.depends = deps(value)?,
        'p' => e.provides = deps(value)?,
        'i' => e.install_if = deps(value)?,
        'r' => e.replaces = deps(value)?,
        'k' => e.provider_priority = Some(number(value)? as u32),
        'q' => e.replaces_priority = Some(number(value)? as u32),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two entries as they appear in Alpine 3.23's `/lib/apk/db/installed` (x86_64).
    const REAL: &str = "C:Q1VFqm8pEgmviZMrdh2eQiwneFlsw=
P:alpine-baselayout
V:3.7.2-r0
A:x86_64
S:8279
I:6552
T:Alpine base dir structure and init scripts
U:https://gitlab.alpinelinux.org/alpine/aports/-/tree/master/main/alpine-baselayout
L:GPL-2.0-only
o:alpine-baselayout
m:Natanael Copa <ncopa@alpinelinux.org>
t:1774422169
c:15b3b78187b3808104f98f765e9632e0b09281a7
D:alpine-baselayout-data=3.7.2-r0 /bin/sh
q:1000
F:dev
F:etc
R:motd
Z:Q1SLkS9hBidUbPwwrw+XR0Whv3ww8=

P:busybox
V:1.37.0-r30
A:x86_64
S:504726
I:813480
T:Size optimized toolbox of many common UNIX utilities
L:GPL-2.0-only
o:busybox
t:1765894768
D:so:libc.musl-x86_64.so.1
p:cmd:busybox=1.37.0-r30
r:busybox-initscripts
F:bin
R:busybox
a:0:0:755
";

    #[test]
    fn parses_real_installed_db_entries() {
        let idx = ApkIndex::parse(REAL).unwrap();
        assert_eq!(idx.entries.len(), 2);
        let base = &idx.entries[0];
        assert_eq!(base.checksum, "Q1VFqm8pEgmviZMrdh2eQiwneFlsw=");
        assert_eq!(base.name_version(), "alpine-baselayout-3.7.2-r0");
        assert_eq!((base.size, base.installed_size), (8279, 6552));
        assert_eq!(base.depends.len(), 2);
        assert_eq!(base.depends[1].name, "/bin/sh");
        assert_eq!(base.replaces_priority, Some(1000));
        let bb = &idx.entries[1];
        assert_eq!(bb.provides[0].to_string(), "cmd:busybox=1.37.0-r30");
        assert_eq!(bb.replaces[0].name, "busybox-initscripts");
        assert_eq!(bb.build_time, Some(1765894768));
    }

    #[test]
    fn errors_carry_line_numbers() {
        let err = ApkIndex::parse("P:a\nV:1-r0\nS:big\n").unwrap_err();
        assert_eq!(err.to_string(), "line 3: field S: \"big\" is not a number");
        let err = ApkIndex::parse("P:a\nV:1-r0\n\nP:b\nV:1\nbroken\n").unwrap_err();
        assert!(
            err.to_string().starts_with("line 6: expected `K:value`"),
            "{err}"
        );
        let err = ApkIndex::parse("P:a\nV:1\n\nP:b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "package entry starting at line 4 has no version (`V:` line)"
        );
        let err = ApkIndex::parse("P:a\nV:1\nD:x>=\n").unwrap_err();
        assert!(err.to_string().starts_with("line 3: field D:"), "{err}");
    }
}
