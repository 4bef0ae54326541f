//! The unprivileged account `edge-runtime` runs as, added to the image's passwd and group.

use anyhow::{bail, Result};

use crate::rootfs::{Meta, RootPath, RootfsTree};

pub const SERVER_USER: &str = "edge";
const SERVER_ID: u32 = 1000;

pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

pub fn add_server_account(tree: &mut RootfsTree, mtime: u64) -> Result<Account> {
    append_line(
        tree,
        "/etc/passwd",
        &format!("{SERVER_USER}:x:{SERVER_ID}:{SERVER_ID}:edgeimg inference server:/var/empty:/sbin/nologin"),
        mtime,
    )?;
    append_line(
        tree,
        "/etc/group",
        &format!("{SERVER_USER}:x:{SERVER_ID}:"),
        mtime,
    )?;
    Ok(Account {
        uid: SERVER_ID,
        gid: SERVER_ID,
    })
}

/// Add `line` to a text file of the tree unless an entry for the same name is there already.
fn append_line(tree: &mut RootfsTree, file: &str, line: &str, mtime: u64) -> Result<()> {
    let path = RootPath::new(file)?;
    let existing = match tree.file_data(&path) {
        Some(data) => String::from_utf8_lossy(data).into_owned(),
        None => String::new(),
    };
    let key = format!("{}:", line.split(':').next().unwrap_or_default());
    if let Some(other) = existing.lines().find(|l| l.starts_with(&key)) {
        if other != line {
            bail!("{file} already has an entry for {key:?} that differs from edgeimg's: {other:?}");
        }
        return Ok(());
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    let meta = tree
        .get(&path)
        .map(|n| n.meta.clone())
        .unwrap_or_else(|| Meta::root(0o644, mtime));
    tree.add_file(path, text.into_bytes(), meta)?;
    Ok(())
}
