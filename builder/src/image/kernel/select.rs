//! Which modules an image ships, each with why: what the board's device trees need on the
//! way to the root device and to the network (the nodes, their buses and their suppliers,
//! resolved through `modules.alias`), what the board and recipe name, and the root's file
//! systems. The module stage adds their dependencies and softdeps.

use super::devicetree::{suppliers, DeviceTree, NodeId};
use super::drivers::{Driver, DriverIndex};
use crate::plan::{ModuleRequest, ModuleUse};

/// What a node on a device-tree path is there for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The root file system is read through it (the boot initramfs must drive it).
    Root,
    Network,
}

impl Role {
    /// Nodes of this role by the DT spec's generic names: SD/eMMC hosts are `mmc`, network
    /// devices `ethernet`.
    fn generic_names(self) -> &'static [&'static str] {
        match self {
            Role::Root => &["mmc"],
            Role::Network => &["ethernet"],
        }
    }

    fn what(self) -> &'static str {
        match self {
            Role::Root => "root device (SD/eMMC host)",
            Role::Network => "network",
        }
    }
}

/// One node on a path and what drives it.
#[derive(Debug, Clone)]
pub struct NodeDriver {
    pub dtb: String,
    pub path: String,
    pub compatibles: Vec<String>,
    pub role: Role,
    /// Why it is on the path: the role itself, or `<property> of <node>`.
    pub because: String,
    pub driver: Driver,
}

impl NodeDriver {
    pub fn describe(&self) -> String {
        let compatible = match self.compatibles.first() {
            Some(c) => format!(" ({c})"),
            None => String::new(),
        };
        format!("{} {}{compatible}: {}", self.dtb, self.path, self.because)
    }
}

/// Every enabled node of `role` in `tree` and all they need, with their drivers. The root
/// node (the machine, not a device) is left out.
pub fn role_nodes(
    dtb: &str,
    tree: &DeviceTree,
    drivers: &DriverIndex,
    role: Role,
) -> Vec<NodeDriver> {
    let start: Vec<NodeId> = (0..tree.nodes.len())
        .filter(|&id| {
            role.generic_names().contains(&tree.node(id).generic_name()) && tree.enabled(id)
        })
        .collect();
    suppliers::closure(tree, &start)
        .into_iter()
        .filter(|r| tree.node(r.node).parent.is_some())
        .map(|reached| {
            let node = tree.node(reached.node);
            let because = match &reached.needed_by {
                None => role.what().to_string(),
                Some((by, via)) => format!("{via} of {}", tree.node(*by).path),
            };
            NodeDriver {
                dtb: dtb.to_string(),
                path: node.path.clone(),
                compatibles: node.compatibles(),
                role,
                because,
                driver: drivers.driver(node),
            }
        })
        .collect()
}

/// The module requests for a board's device trees (root path in the boot initramfs, network
/// path in the root), and every node each path holds.
pub fn device_tree_requests(
    trees: &[(String, DeviceTree)],
    drivers: &DriverIndex,
) -> (Vec<ModuleRequest>, Vec<NodeDriver>) {
    let mut requests = Vec::new();
    let mut nodes = Vec::new();
    for (dtb, tree) in trees {
        for role in [Role::Root, Role::Network] {
            for node in role_nodes(dtb, tree, drivers, role) {
                if let Driver::Modules(modules) = &node.driver {
                    for module in modules {
                        requests.push(ModuleRequest {
                            name: module.clone(),
                            why: format!("device tree {}", node.describe()),
                            used: ModuleUse::ByDevice,
                            in_boot_initramfs: role == Role::Root,
                        });
                    }
                }
                nodes.push(node);
            }
        }
    }
    (requests, nodes)
}
