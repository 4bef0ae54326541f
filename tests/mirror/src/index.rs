//! Writes `APKINDEX.tar.gz`: a signature member (cut tar, `.SIGN.RSA256.<key>` over the next
//! member) followed by a gzip member holding a tar of `DESCRIPTION` and `APKINDEX`.

use crate::apk::WrittenApk;
use crate::signing::Signer;
use crate::tarball::{gzip, TarWriter};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// The `APKINDEX` text: one block per package in apk-tools' index field order.
pub fn render(packages: &[WrittenApk]) -> String {
    let mut out = String::new();
    let mut sorted: Vec<&WrittenApk> = packages.iter().collect();
    sorted.sort_by(|a, b| (&a.meta.name, &a.meta.version).cmp(&(&b.meta.name, &b.meta.version)));
    for pkg in sorted {
        let m = &pkg.meta;
        let mut field = |key: char, value: &str| {
            let _ = writeln!(out, "{key}:{value}");
        };
        field('C', &pkg.identity());
        field('P', &m.name);
        field('V', &m.version);
        field('A', &m.arch);
        field('S', &pkg.size.to_string());
        field('I', &m.installed_size.to_string());
        field('T', &m.description);
        field('U', &m.url);
        field('L', &m.license);
        field('o', &m.origin);
        if let Some(maintainer) = &m.maintainer {
            field('m', maintainer);
        }
        field('t', &m.build_time.to_string());
        if let Some(commit) = &m.commit {
            field('c', commit);
        }
        if let Some(priority) = m.provider_priority {
            field('k', &priority.to_string());
        }
        for (key, list) in [('D', &m.depends), ('p', &m.provides), ('i', &m.install_if)] {
            if !list.is_empty() {
                field(key, &list.join(" "));
            }
        }
        out.push('\n');
    }
    out
}

pub fn write_index(
    dir: &Path,
    description: &str,
    packages: &[WrittenApk],
    signer: &Signer,
) -> Result<()> {
    let mtime = packages
        .iter()
        .map(|p| p.meta.build_time)
        .max()
        .unwrap_or(0);
    let index = render(packages);
    let mut tar = TarWriter::new(Vec::new(), mtime);
    tar.file(
        "DESCRIPTION",
        0o644,
        0,
        0,
        description.len() as u64,
        description.as_bytes(),
    )?;
    tar.file(
        "APKINDEX",
        0o644,
        0,
        0,
        index.len() as u64,
        index.as_bytes(),
    )?;
    let body = gzip(&tar.finish()?)?;
    let sig = signer.signature_stream(&body, mtime)?;

    let path = dir.join("APKINDEX.tar.gz");
    fs::write(&path, [sig, body].concat()).with_context(|| format!("writing {}", path.display()))
}
