use std::collections::{BTreeMap, BTreeSet};

use super::path::RootPath;

/// File contents, shared so that hardlinks, caches and writers never copy them; a file
/// unpacked from a package is a slice of the package's data stream, or of its cached copy.
pub type FileData = bytes::Bytes;

/// Ownership, permissions and times of one node. `mode` holds only the permission bits
/// (`0o7777`, including setuid/setgid/sticky); the node kind supplies the file type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    /// Extended attributes, e.g. `security.capability`, kept as the archive gave them.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Meta {
    /// root:root with the given permission bits and time.
    pub fn root(mode: u32, mtime: u64) -> Self {
        Meta {
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File(FileData),
    /// Target as written (absolute or relative); it is resolved on the device, never on the host.
    Symlink(String),
    /// Another name for the regular file at this path (which must exist in the tree).
    Hardlink(RootPath),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

impl NodeKind {
    /// The `S_IFMT` bits for this kind (a hardlink reports its target's, a regular file).
    pub fn type_bits(&self) -> u32 {
        match self {
            NodeKind::Dir => 0o040000,
            NodeKind::File(_) | NodeKind::Hardlink(_) => 0o100000,
            NodeKind::Symlink(_) => 0o120000,
            NodeKind::CharDevice { .. } => 0o020000,
            NodeKind::BlockDevice { .. } => 0o060000,
            NodeKind::Fifo => 0o010000,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            NodeKind::Dir => "a directory",
            NodeKind::File(_) => "a file",
            NodeKind::Symlink(_) => "a symlink",
            NodeKind::Hardlink(_) => "a hardlink",
            NodeKind::CharDevice { .. } | NodeKind::BlockDevice { .. } => "a device node",
            NodeKind::Fifo => "a fifo",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub meta: Meta,
}

impl Node {
    /// Full `st_mode`: file type bits plus permissions.
    pub fn st_mode(&self) -> u32 {
        self.kind.type_bits() | self.meta.mode
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("cannot create {path}: {ancestor} is a symlink, and writing through a symlink could land anywhere; the archive is malformed or malicious")]
    ThroughSymlink { path: RootPath, ancestor: RootPath },
    #[error("cannot create {path}: {ancestor} is {what}, not a directory")]
    NotADirectory {
        path: RootPath,
        ancestor: RootPath,
        what: &'static str,
    },
    #[error("cannot replace the non-empty directory {0} with a non-directory")]
    ReplacesDirectory(RootPath),
    #[error("cannot replace {path}, which is {what}, with a directory")]
    DirectoryOverNonDir { path: RootPath, what: &'static str },
    #[error(
        "hardlink {path} points at {target}, which is not a regular file already in the image"
    )]
    BadHardlink { path: RootPath, target: RootPath },
    #[error("hardlink {0} names itself; it would replace the only file it could point at")]
    HardlinkToItself(RootPath),
    #[error("the image root itself can only be a directory")]
    RootNotDir,
}

/// The image's file system, path -> node, kept sorted so every writer sees the same order
/// (parents always before their children).
#[derive(Debug, Clone)]
pub struct RootfsTree {
    nodes: BTreeMap<RootPath, Node>,
    /// Regular file -> the hardlinks that name it, so replacing or removing the file can leave
    /// them what a real file system leaves them: the old contents.
    links: BTreeMap<RootPath, BTreeSet<RootPath>>,
    /// Mode and time for directories created implicitly as parents.
    implicit_dir: Meta,
}

impl RootfsTree {
    /// An empty tree whose root (and implicitly created directories) are root:root 0755 at `mtime`.
    pub fn new(mtime: u64) -> Self {
        let implicit_dir = Meta::root(0o755, mtime);
        let mut nodes = BTreeMap::new();
        nodes.insert(
            RootPath::root(),
            Node {
                kind: NodeKind::Dir,
                meta: implicit_dir.clone(),
            },
        );
        RootfsTree {
            nodes,
            links: BTreeMap::new(),
            implicit_dir,
        }
    }

    /// Add or replace one node, creating missing parent directories. Later additions win over
    /// earlier ones (as when a later package overwrites a file), except that nothing may be
    /// written through a symlink or a non-directory, and a directory keeps its children.
    pub fn insert(&mut self, path: RootPath, node: Node) -> Result<(), TreeError> {
        if path.is_root() {
            if node.kind != NodeKind::Dir {
                return Err(TreeError::RootNotDir);
            }
            self.nodes.insert(path, node);
            return Ok(());
        }
        for ancestor in path.ancestors().collect::<Vec<_>>() {
            match self.nodes.get(&ancestor) {
                None => {
                    self.nodes.insert(
                        ancestor,
                        Node {
                            kind: NodeKind::Dir,
                            meta: self.implicit_dir.clone(),
                        },
                    );
                }
                Some(Node {
                    kind: NodeKind::Dir,
                    ..
                }) => {}
                Some(Node {
                    kind: NodeKind::Symlink(_),
                    ..
                }) => return Err(TreeError::ThroughSymlink { path, ancestor }),
                Some(other) => {
                    return Err(TreeError::NotADirectory {
                        path,
                        ancestor,
                        what: other.kind.describe(),
                    })
                }
            }
        }
        if let NodeKind::Hardlink(target) = &node.kind {
            if *target == path {
                return Err(TreeError::HardlinkToItself(path));
            }
            if !matches!(self.get(target).map(|n| &n.kind), Some(NodeKind::File(_))) {
                return Err(TreeError::BadHardlink {
                    path,
                    target: target.clone(),
                });
            }
        }
        match (self.nodes.get(&path).map(|n| &n.kind), &node.kind) {
            (Some(NodeKind::Dir), NodeKind::Dir) | (None, _) => {}
            (Some(NodeKind::Dir), _) if self.children(&path).next().is_some() => {
                return Err(TreeError::ReplacesDirectory(path))
            }
            (Some(existing), NodeKind::Dir) if *existing != NodeKind::Dir => {
                return Err(TreeError::DirectoryOverNonDir {
                    what: existing.describe(),
                    path,
                })
            }
            _ => {}
        }
        self.detach(&path);
        if let NodeKind::Hardlink(target) = &node.kind {
            self.links
                .entry(target.clone())
                .or_default()
                .insert(path.clone());
        }
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Before the node at `path` is replaced or removed: a hardlink stops counting as one of
    /// its target's names, and the hardlinks naming a file keep its contents as files of
    /// their own (a hardlink must always name a regular file in the tree).
    fn detach(&mut self, path: &RootPath) {
        if let Some(NodeKind::Hardlink(target)) = self.nodes.get(path).map(|n| &n.kind) {
            if let Some(names) = self.links.get_mut(target) {
                names.remove(path);
            }
        }
        let Some(names) = self.links.remove(path) else {
            return;
        };
        let Some(NodeKind::File(data)) = self.nodes.get(path).map(|n| n.kind.clone()) else {
            unreachable!("hardlinks only ever name regular files")
        };
        for name in names {
            if let Some(link) = self.nodes.get_mut(&name) {
                link.kind = NodeKind::File(data.clone());
            }
        }
    }

    pub fn add_dir(&mut self, path: RootPath, meta: Meta) -> Result<(), TreeError> {
        self.insert(
            path,
            Node {
                kind: NodeKind::Dir,
                meta,
            },
        )
    }

    pub fn add_file(
        &mut self,
        path: RootPath,
        data: impl Into<FileData>,
        meta: Meta,
    ) -> Result<(), TreeError> {
        self.insert(
            path,
            Node {
                kind: NodeKind::File(data.into()),
                meta,
            },
        )
    }

    pub fn add_symlink(
        &mut self,
        path: RootPath,
        target: impl Into<String>,
        meta: Meta,
    ) -> Result<(), TreeError> {
        self.insert(
            path,
            Node {
                kind: NodeKind::Symlink(target.into()),
                meta,
            },
        )
    }

    pub fn get(&self, path: &RootPath) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn contains(&self, path: &RootPath) -> bool {
        self.nodes.contains_key(path)
    }

    /// Contents of a regular file, following a hardlink to its target.
    pub fn file_data(&self, path: &RootPath) -> Option<&FileData> {
        match &self.nodes.get(path)?.kind {
            NodeKind::File(data) => Some(data),
            NodeKind::Hardlink(target) => self.file_data(target),
            _ => None,
        }
    }

    /// Remove a node and everything below it; returns how many nodes went.
    pub fn remove(&mut self, path: &RootPath) -> usize {
        let mut doomed: Vec<RootPath> = self
            .nodes
            .range(path.descendants())
            .map(|(p, _)| p.clone())
            .collect();
        if !path.is_root() && self.nodes.contains_key(path) {
            doomed.push(path.clone());
        }
        for p in &doomed {
            self.detach(p);
            self.nodes.remove(p);
        }
        doomed.len()
    }

    /// Move everything below `dir` into a tree of its own (same paths, hardlinks as copies),
    /// leaving `dir` itself, empty, in this one.
    pub fn split_off(&mut self, dir: &RootPath) -> Result<RootfsTree, TreeError> {
        let mut moved = RootfsTree {
            nodes: BTreeMap::new(),
            links: BTreeMap::new(),
            implicit_dir: self.implicit_dir.clone(),
        };
        moved.nodes.insert(
            RootPath::root(),
            Node {
                kind: NodeKind::Dir,
                meta: self.implicit_dir.clone(),
            },
        );
        let below: Vec<RootPath> = self
            .nodes
            .range(dir.descendants())
            .map(|(p, _)| p.clone())
            .collect();
        for path in &below {
            let mut node = self.nodes[path].clone();
            if let NodeKind::Hardlink(_) = node.kind {
                let data = self.file_data(path).expect("hardlinks name files").clone();
                node.kind = NodeKind::File(data);
            }
            moved.insert(path.clone(), node)?;
        }
        for path in below.iter().rev() {
            self.detach(path);
            self.nodes.remove(path);
        }
        Ok(moved)
    }

    /// Direct children of a directory, in sorted order.
    pub fn children<'a>(
        &'a self,
        dir: &RootPath,
    ) -> impl Iterator<Item = (&'a RootPath, &'a Node)> + 'a {
        let dir = dir.clone();
        self.nodes
            .range(dir.descendants())
            .filter(move |(p, _)| p.parent().as_ref() == Some(&dir))
    }

    /// Every node, parents before children, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = (&RootPath, &Node)> {
        self.nodes.iter()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// Bytes of regular-file data, each hardlinked file counted once.
    pub fn file_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match &n.kind {
                NodeKind::File(d) => d.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// The time given to implicitly created directories.
    pub fn default_mtime(&self) -> u64 {
        self.implicit_dir.mtime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RootPath {
        RootPath::new(s).unwrap()
    }

    fn link(target: &str) -> Node {
        Node {
            kind: NodeKind::Hardlink(p(target)),
            meta: Meta::root(0o644, 0),
        }
    }

    #[test]
    fn creates_parents_and_keeps_order() {
        let mut t = RootfsTree::new(0);
        t.add_file(p("usr/bin/x"), b"x".to_vec(), Meta::root(0o755, 0))
            .unwrap();
        t.add_file(p("usr-local"), b"y".to_vec(), Meta::root(0o644, 0))
            .unwrap();
        let order: Vec<_> = t.iter().map(|(p, _)| p.as_str().to_string()).collect();
        assert_eq!(order, ["", "usr", "usr-local", "usr/bin", "usr/bin/x"]);
        let kids: Vec<_> = t.children(&p("usr")).map(|(p, _)| p.as_str()).collect();
        assert_eq!(kids, ["usr/bin"]);
        assert_eq!(t.get(&p("usr/bin")).unwrap().st_mode(), 0o040755);
    }

    #[test]
    fn refuses_writing_through_a_symlink() {
        let mut t = RootfsTree::new(0);
        t.add_symlink(p("evil"), "/etc", Meta::root(0o777, 0))
            .unwrap();
        let err = t
            .add_file(p("evil/passwd"), b"x".to_vec(), Meta::root(0o644, 0))
            .unwrap_err();
        assert!(matches!(err, TreeError::ThroughSymlink { .. }), "{err}");
        assert!(!t.contains(&p("evil/passwd")));
    }

    #[test]
    fn hardlinks_must_point_at_files_in_the_tree() {
        let mut t = RootfsTree::new(0);
        assert!(t.insert(p("a"), link("missing")).is_err());
        t.add_file(p("real"), b"data".to_vec(), Meta::root(0o644, 0))
            .unwrap();
        t.insert(p("a"), link("real")).unwrap();
        assert_eq!(&**t.file_data(&p("a")).unwrap(), b"data");
    }

    #[test]
    fn hardlinks_keep_the_old_contents_when_their_file_is_replaced_or_removed() {
        let mut t = RootfsTree::new(0);
        t.add_file(p("a"), b"old".to_vec(), Meta::root(0o644, 0))
            .unwrap();
        t.insert(p("b"), link("a")).unwrap();
        t.insert(p("c"), link("a")).unwrap();
        t.add_symlink(p("a"), "/", Meta::root(0o777, 0)).unwrap();
        for name in ["b", "c"] {
            assert!(
                matches!(&t.get(&p(name)).unwrap().kind, NodeKind::File(d) if &d[..] == b"old")
            );
        }
        t.insert(p("d"), link("b")).unwrap();
        assert_eq!(t.remove(&p("b")), 1);
        assert!(matches!(&t.get(&p("d")).unwrap().kind, NodeKind::File(d) if &d[..] == b"old"));
        // A hardlink replaced by a file no longer counts as one of its target's names.
        t.insert(p("e"), link("c")).unwrap();
        t.add_file(p("e"), b"new".to_vec(), Meta::root(0o644, 0))
            .unwrap();
        t.add_dir(p("c"), Meta::root(0o755, 0)).unwrap_err();
        t.remove(&p("c"));
        assert_eq!(&**t.file_data(&p("e")).unwrap(), b"new");
    }

    #[test]
    fn directories_keep_children_and_remove_is_recursive() {
        let mut t = RootfsTree::new(0);
        t.add_file(p("d/f"), b"1".to_vec(), Meta::root(0o644, 0))
            .unwrap();
        assert!(t
            .add_file(p("d"), b"2".to_vec(), Meta::root(0o644, 0))
            .is_err());
        t.add_dir(p("d"), Meta::root(0o700, 5)).unwrap();
        assert_eq!(t.get(&p("d")).unwrap().meta.mode, 0o700);
        t.add_file(p("d-x"), b"3".to_vec(), Meta::root(0o644, 0))
            .unwrap();
        assert_eq!(t.remove(&p("d")), 2);
        assert!(t.contains(&p("d-x")));
    }
}
