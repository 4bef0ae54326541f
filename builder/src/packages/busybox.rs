//! Busybox applet links. On a real install busybox's post-install runs `busybox --install -s`;
//! we never run target binaries, so we create the same links from the list the package ships.

use anyhow::{Context, Result};

use crate::rootfs::{Meta, RootPath, RootfsTree};

/// The applet list in the busybox package (one path per line, relative to `/`).
pub const PATHS_FILE: &str = "etc/busybox-paths.d/busybox";
const BUSYBOX: &str = "/bin/busybox";

/// Link every listed applet to `/bin/busybox`, leaving paths another package already
/// provides alone (as `busybox --install` does). Returns how many links were made; zero if
/// busybox is not installed.
pub fn create_applet_links(tree: &mut RootfsTree) -> Result<usize> {
    let list_path = RootPath::new(PATHS_FILE)?;
    let Some(list) = tree.file_data(&list_path).cloned() else {
        return Ok(0);
    };
    if tree.file_data(&RootPath::new(BUSYBOX)?).is_none() {
        return Ok(0);
    }
    let text = std::str::from_utf8(&list).with_context(|| format!("/{PATHS_FILE} is not UTF-8"))?;
    let mtime = tree.default_mtime();
    let mut made = 0;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let path = RootPath::new(line)
            .with_context(|| format!("/{PATHS_FILE}: bad applet path {line:?}"))?;
        if path.is_root() || tree.contains(&path) {
            continue;
        }
        tree.add_symlink(path, BUSYBOX, Meta::root(0o777, mtime))
            .with_context(|| format!("cannot create busybox applet link /{line}"))?;
        made += 1;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::NodeKind;

    #[test]
    fn links_listed_applets_only_where_free() {
        let mut t = RootfsTree::new(0);
        let p = |s: &str| RootPath::new(s).unwrap();
        t.add_file(p("bin/busybox"), b"ELF".to_vec(), Meta::root(0o755, 0))
            .unwrap();
        t.add_file(
            p(PATHS_FILE),
            b"bin/sh\nusr/bin/[[\nbin/ls\n".to_vec(),
            Meta::root(0o644, 0),
        )
        .unwrap();
        t.add_file(p("bin/ls"), b"coreutils".to_vec(), Meta::root(0o755, 0))
            .unwrap();
        assert_eq!(create_applet_links(&mut t).unwrap(), 2);
        assert_eq!(
            t.get(&p("bin/sh")).unwrap().kind,
            NodeKind::Symlink("/bin/busybox".into())
        );
        assert!(matches!(
            t.get(&p("usr/bin/[[")).unwrap().kind,
            NodeKind::Symlink(_)
        ));
        assert!(matches!(
            t.get(&p("bin/ls")).unwrap().kind,
            NodeKind::File(_)
        ));
    }
}
