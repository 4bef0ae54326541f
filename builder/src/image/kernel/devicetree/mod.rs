//! A board's device tree, read from its DTB: every node with its path, parent and
//! properties, found by path or phandle. [`suppliers`] follows what a node needs before its
//! driver can probe. Parsing is dtoolkit's.

pub mod suppliers;

use std::collections::{BTreeMap, HashMap};

use dtoolkit::fdt::Fdt;
use dtoolkit::{Node as _, Property as _};

#[derive(Debug, thiserror::Error)]
#[error("{name} is not a valid device tree blob: {why}")]
pub struct DeviceTreeError {
    pub name: String,
    pub why: String,
}

/// Index of a node in its [`DeviceTree`].
pub type NodeId = usize;

#[derive(Debug, Clone)]
pub struct DtNode {
    /// Full path, `/emmc2bus/mmc@7e340000` (the root is `/`).
    pub path: String,
    /// With its unit address, `mmc@7e340000`.
    pub name: String,
    pub parent: Option<NodeId>,
    properties: BTreeMap<String, Vec<u8>>,
}

impl DtNode {
    /// The name without the unit address (`mmc`): the DT spec's generic names say what a
    /// node is (`mmc`, `ethernet`, `usb`, ...).
    pub fn generic_name(&self) -> &str {
        self.name.split('@').next().unwrap_or(&self.name)
    }

    pub fn property(&self, name: &str) -> Option<&[u8]> {
        self.properties.get(name).map(Vec::as_slice)
    }

    pub fn properties(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    pub fn has(&self, name: &str) -> bool {
        self.properties.contains_key(name)
    }

    /// A string list property (`compatible`), each string once, in order.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.property(name)
            .map(|value| {
                value
                    .split(|&b| b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn compatibles(&self) -> Vec<String> {
        self.strings("compatible")
    }

    /// Big-endian 32-bit cells.
    pub fn cells(&self, name: &str) -> Vec<u32> {
        self.property(name)
            .map(|value| {
                value
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn u32(&self, name: &str) -> Option<u32> {
        self.cells(name).first().copied()
    }

    /// `status` absent, `okay` or `ok`: the kernel creates a device for it.
    pub fn enabled(&self) -> bool {
        matches!(
            self.strings("status").first().map(String::as_str),
            None | Some("okay" | "ok")
        )
    }
}

#[derive(Debug, Clone)]
pub struct DeviceTree {
    pub nodes: Vec<DtNode>,
    by_phandle: HashMap<u32, NodeId>,
}

impl DeviceTree {
    /// Parses a DTB; `name` is for messages (the file's name).
    pub fn parse(name: &str, dtb: &[u8]) -> Result<DeviceTree, DeviceTreeError> {
        let fdt = Fdt::new(dtb).map_err(|e| DeviceTreeError {
            name: name.to_string(),
            why: e.to_string(),
        })?;
        let mut tree = DeviceTree {
            nodes: Vec::new(),
            by_phandle: HashMap::new(),
        };
        tree.add(&fdt.root(), None);
        Ok(tree)
    }

    fn add(&mut self, node: &dtoolkit::fdt::FdtNode<'_>, parent: Option<NodeId>) {
        let name = node.name().to_string();
        let path = match parent {
            None => "/".to_string(),
            Some(p) if self.nodes[p].path == "/" => format!("/{name}"),
            Some(p) => format!("{}/{name}", self.nodes[p].path),
        };
        let properties = node
            .properties()
            .map(|p| (p.name().to_string(), p.value().to_vec()))
            .collect();
        let id = self.nodes.len();
        self.nodes.push(DtNode {
            path,
            name,
            parent,
            properties,
        });
        for key in ["phandle", "linux,phandle"] {
            if let Some(phandle) = self.nodes[id].u32(key) {
                self.by_phandle.insert(phandle, id);
            }
        }
        for child in node.children() {
            self.add(&child, Some(id));
        }
    }

    pub fn node(&self, id: NodeId) -> &DtNode {
        &self.nodes[id]
    }

    pub fn find(&self, path: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.path == path)
    }

    pub fn by_phandle(&self, phandle: u32) -> Option<NodeId> {
        self.by_phandle.get(&phandle).copied()
    }

    /// The node and every ancestor enabled: a disabled bus hides its children.
    pub fn enabled(&self, id: NodeId) -> bool {
        let mut at = Some(id);
        while let Some(node) = at {
            if !self.nodes[node].enabled() {
                return false;
            }
            at = self.nodes[node].parent;
        }
        true
    }

    /// The ancestors of a node, nearest first (the root last).
    pub fn ancestors(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::successors(self.nodes[id].parent, move |&p| self.nodes[p].parent)
    }
}

#[cfg(test)]
pub(crate) mod tests;
