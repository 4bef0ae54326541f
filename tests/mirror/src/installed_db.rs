//! Parser for apk-tools' installed database (`/lib/apk/db/installed`, the v2 text format:
//! one block per package, `X:value` lines, blank line between packages).

use anyhow::{bail, Context, Result};

use crate::package::PackageMeta;

/// Owner and mode, as the `M:` (directory) and `a:` (file) lines record them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acl {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// apk-tools omits the acl line when it equals these defaults.
pub const DEFAULT_DIR_ACL: Acl = Acl {
    uid: 0,
    gid: 0,
    mode: 0o755,
};
pub const DEFAULT_FILE_ACL: Acl = Acl {
    uid: 0,
    gid: 0,
    mode: 0o644,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbEntryKind {
    Dir,
    File { checksum: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbEntry {
    pub path: String,
    pub kind: DbEntryKind,
    pub acl: Acl,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    pub meta: PackageMeta,
    /// The `C:` identity (checksum of Alpine's original control stream); keys scripts/triggers.
    pub identity: String,
    pub entries: Vec<DbEntry>,
}

pub fn parse(text: &str) -> Result<Vec<InstalledPackage>> {
    let mut packages = Vec::new();
    let mut current: Option<InstalledPackage> = None;
    let mut dir = String::new();
    for (index, line) in text.lines().enumerate() {
        let lineno = index + 1;
        if line.is_empty() {
            if let Some(pkg) = current.take() {
                packages.push(finish(pkg, lineno)?);
            }
            continue;
        }
        let (key, value) = match line.split_once(':') {
            Some((key, value)) if key.len() == 1 => (key, value),
            _ => bail!("installed db line {lineno}: expected `X:value`, got {line:?}"),
        };
        let pkg = current.get_or_insert_with(|| InstalledPackage {
            meta: PackageMeta::default(),
            identity: String::new(),
            entries: Vec::new(),
        });
        apply_field(pkg, &mut dir, key, value)
            .with_context(|| format!("installed db line {lineno}"))?;
    }
    if let Some(pkg) = current.take() {
        packages.push(finish(pkg, text.lines().count())?);
    }
    Ok(packages)
}

fn finish(pkg: InstalledPackage, lineno: usize) -> Result<InstalledPackage> {
    if pkg.meta.name.is_empty() || pkg.meta.version.is_empty() {
        bail!("installed db: the package block ending at line {lineno} has no P: or V: line");
    }
    Ok(pkg)
}

fn apply_field(pkg: &mut InstalledPackage, dir: &mut String, key: &str, value: &str) -> Result<()> {
    let meta = &mut pkg.meta;
    let words = || value.split_whitespace().map(str::to_owned);
    match key {
        "C" => pkg.identity = value.to_owned(),
        "P" => meta.name = value.to_owned(),
        "V" => meta.version = value.to_owned(),
        "A" => meta.arch = value.to_owned(),
        "I" => meta.installed_size = number(value)?,
        "T" => meta.description = value.to_owned(),
        "U" => meta.url = value.to_owned(),
        "L" => meta.license = value.to_owned(),
        "o" => meta.origin = value.to_owned(),
        "m" => meta.maintainer = Some(value.to_owned()),
        "t" => meta.build_time = number(value)?,
        "c" => meta.commit = Some(value.to_owned()),
        "D" => meta.depends.extend(words()),
        "p" => meta.provides.extend(words()),
        "i" => meta.install_if.extend(words()),
        "r" => meta.replaces.extend(words()),
        "k" => meta.provider_priority = Some(number(value)?),
        "q" => meta.replaces_priority = Some(number(value)?),
        "F" => {
            *dir = value.to_owned();
            pkg.entries.push(DbEntry {
                path: value.to_owned(),
                kind: DbEntryKind::Dir,
                acl: DEFAULT_DIR_ACL,
            });
        }
        "R" => {
            let path = if dir.is_empty() {
                value.to_owned()
            } else {
                format!("{dir}/{value}")
            };
            pkg.entries.push(DbEntry {
                path,
                kind: DbEntryKind::File { checksum: None },
                acl: DEFAULT_FILE_ACL,
            });
        }
        "M" => set_acl(pkg, value, true)?,
        "a" => set_acl(pkg, value, false)?,
        "Z" => match pkg.entries.last_mut() {
            Some(DbEntry {
                kind: DbEntryKind::File { checksum },
                ..
            }) => *checksum = Some(value.to_owned()),
            _ => bail!("Z: line without a preceding R: file line"),
        },
        // S (Alpine's .apk size) is recomputed; other fields (f, g, s, x, ...) are not
        // carried by v2 packages written here.
        _ => {}
    }
    Ok(())
}

fn set_acl(pkg: &mut InstalledPackage, value: &str, for_dir: bool) -> Result<()> {
    let acl = parse_acl(value)?;
    match pkg.entries.last_mut() {
        Some(entry) if matches!(entry.kind, DbEntryKind::Dir) == for_dir => entry.acl = acl,
        _ => bail!(
            "acl line {value:?} does not follow a {} line",
            if for_dir { "F:" } else { "R:" }
        ),
    }
    Ok(())
}

/// `uid:gid:octal-mode`, optionally followed by `:xattr-checksum` (ignored).
fn parse_acl(value: &str) -> Result<Acl> {
    let mut parts = value.split(':');
    let (Some(uid), Some(gid), Some(mode)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("acl {value:?} is not uid:gid:mode");
    };
    Ok(Acl {
        uid: number(uid)?,
        gid: number(gid)?,
        mode: u32::from_str_radix(mode, 8)
            .with_context(|| format!("acl mode {mode:?} is not octal"))?,
    })
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T> {
    value
        .parse()
        .ok()
        .with_context(|| format!("{value:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "C:Q1abc=\nP:busybox\nV:1.37.0-r30\nA:x86_64\nI:813480\nT:Tiny\nt:1765894768\n\
D:so:libc.musl-x86_64.so.1 foo\np:cmd:busybox=1.37.0-r30\nF:bin\nR:busybox\na:0:0:755\nZ:Q1zz=\n\
F:tmp\nM:0:0:1777\nR:x\n\nC:Q1def=\nP:musl\nV:1.2.5-r0\n";

    #[test]
    fn parses_packages_fields_and_acls() {
        let pkgs = parse(SAMPLE).unwrap();
        assert_eq!(pkgs.len(), 2);
        let bb = &pkgs[0];
        assert_eq!(bb.identity, "Q1abc=");
        assert_eq!(bb.meta.depends, ["so:libc.musl-x86_64.so.1", "foo"]);
        assert_eq!(bb.meta.installed_size, 813480);
        assert_eq!(bb.entries[1].path, "bin/busybox");
        assert_eq!(bb.entries[1].acl.mode, 0o755);
        assert_eq!(
            bb.entries[1].kind,
            DbEntryKind::File {
                checksum: Some("Q1zz=".into())
            }
        );
        assert_eq!(bb.entries[2].acl.mode, 0o1777);
        assert_eq!(bb.entries[3].acl, DEFAULT_FILE_ACL);
        assert_eq!(pkgs[1].meta.name, "musl");
    }

    #[test]
    fn rejects_garbage_with_line_number() {
        let err = parse("P:x\nnot a field\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    }
}
