//! What a node needs before its driver can probe: the providers its phandle properties point
//! at (regulators, clocks, resets, power domains, pin control, PHYs, GPIOs, interrupt
//! controllers, ...) and the buses above it. The kernel's fw_devlink follows the same
//! properties; a supplier whose driver is missing leaves the consumer deferred forever.

use std::collections::BTreeSet;

use super::{DeviceTree, NodeId};

/// Phandle-with-arguments lists and the provider property that says how many argument cells
/// follow each phandle.
const LISTS: [(&str, &str); 13] = [
    ("clocks", "#clock-cells"),
    ("assigned-clocks", "#clock-cells"),
    ("assigned-clock-parents", "#clock-cells"),
    ("resets", "#reset-cells"),
    ("power-domains", "#power-domain-cells"),
    ("phys", "#phy-cells"),
    ("dmas", "#dma-cells"),
    ("mboxes", "#mbox-cells"),
    ("pwms", "#pwm-cells"),
    ("io-channels", "#io-channel-cells"),
    ("iommus", "#iommu-cells"),
    ("interrupts-extended", "#interrupt-cells"),
    ("thermal-sensors", "#thermal-sensor-cells"),
];

/// Properties that hold plain phandles, one or several.
const PHANDLES: [&str; 5] = [
    "mmc-pwrseq",
    "phy-handle",
    "memory-region",
    "nvmem-cells",
    "interrupt-parent",
];

/// Why a node is needed: the node that needs it and through which property (`parent` for a
/// bus above it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub supplier: NodeId,
    pub via: String,
}

/// The nodes `id` depends on directly. A disabled supplier is left out, as the kernel's
/// fw_devlink leaves it: no device will ever come from it, so nothing waits for one.
pub fn suppliers(tree: &DeviceTree, id: NodeId) -> Vec<Edge> {
    let node = tree.node(id);
    let mut edges = Vec::new();
    let mut push = |supplier: Option<NodeId>, via: &str| {
        if let Some(supplier) = supplier.filter(|&s| s != id && tree.enabled(s)) {
            let edge = Edge {
                supplier,
                via: via.to_string(),
            };
            if !edges.contains(&edge) {
                edges.push(edge);
            }
        }
    };
    if let Some(parent) = node.parent {
        push(Some(parent), "parent");
    }
    for (name, _) in node.properties() {
        let cells =
            if name.ends_with("-supply") || is_pinctrl_state(name) || PHANDLES.contains(&name) {
                Some(None)
            } else if is_gpio_list(name) {
                Some(Some("#gpio-cells"))
            } else {
                LISTS
                    .iter()
                    .find(|(list, _)| *list == name)
                    .map(|(_, cells)| Some(*cells))
            };
        match cells {
            Some(None) => {
                for phandle in node.cells(name) {
                    push(tree.by_phandle(phandle), name);
                }
            }
            Some(Some(cells_property)) => {
                for supplier in phandle_list(tree, &node.cells(name), cells_property) {
                    push(Some(supplier), name);
                }
            }
            None => {}
        }
    }
    // Interrupts without an explicit parent go to the nearest ancestor's interrupt-parent.
    if node.has("interrupts") && !node.has("interrupt-parent") {
        let controller = tree
            .ancestors(id)
            .find_map(|a| tree.node(a).u32("interrupt-parent"))
            .and_then(|p| tree.by_phandle(p));
        push(controller, "interrupts");
    }
    edges
}

/// `*-gpios`, `gpios` and the older `*-gpio`, `gpio` (but not `gpio-controller`, `ngpios`,
/// `gpio-line-names`, `#gpio-cells`, ...).
fn is_gpio_list(name: &str) -> bool {
    name == "gpios" || name == "gpio" || name.ends_with("-gpios") || name.ends_with("-gpio")
}

/// `pinctrl-0`, `pinctrl-1`, ... (not `pinctrl-names`).
fn is_pinctrl_state(name: &str) -> bool {
    name.strip_prefix("pinctrl-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The providers in `<&a arg...> <&b arg...>`; each provider's `cells_property` says how
/// many arguments follow its phandle. Stops at a provider it cannot find (the rest cannot be
/// split).
fn phandle_list(tree: &DeviceTree, cells: &[u32], cells_property: &str) -> Vec<NodeId> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < cells.len() {
        let phandle = cells[at];
        at += 1;
        if phandle == 0 {
            // An empty slot in the list (e.g. an unused chip select).
            continue;
        }
        let Some(provider) = tree.by_phandle(phandle) else {
            break;
        };
        found.push(provider);
        at += tree.node(provider).u32(cells_property).unwrap_or(0) as usize;
    }
    found
}

/// One node reached from the start nodes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    pub node: NodeId,
    /// `None` for a start node; else the node that needs it and the property.
    pub needed_by: Option<(NodeId, String)>,
}

/// The start nodes and everything they need, transitively, each once, in the order reached.
pub fn closure(tree: &DeviceTree, start: &[NodeId]) -> Vec<Reached> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut queue: std::collections::VecDeque<Reached> = start
        .iter()
        .map(|&node| Reached {
            node,
            needed_by: None,
        })
        .collect();
    while let Some(reached) = queue.pop_front() {
        if !seen.insert(reached.node) {
            continue;
        }
        for edge in suppliers(tree, reached.node) {
            if !seen.contains(&edge.supplier) {
                queue.push_back(Reached {
                    node: edge.supplier,
                    needed_by: Some((reached.node, edge.via)),
                });
            }
        }
        out.push(reached);
    }
    out
}
