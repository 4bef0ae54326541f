//! The changes QEMU's Pi machines need in the card's device tree, all in one place, each with
//! why. They are made on a copy used only for the emulated boot; the card is never changed.
//! Measured with QEMU 10.0.2's raspi4b and Debian's 6.1 kernel and bcm2711-rpi-4-b.dtb.

use anyhow::{Context, Result};
use dtoolkit::fdt::Fdt;
use dtoolkit::model::{DeviceTree, DeviceTreeProperty};
use edgeimg_qemu::Board as QemuBoard;

/// One change and why QEMU needs it.
#[derive(Debug, Clone, Copy)]
pub struct DtEdit {
    pub node: &'static str,
    pub change: Change,
    pub why: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// `status = "disabled"`: the kernel leaves the block alone.
    Disable,
    DeleteNode,
    DeleteProperty(&'static str),
    SetString(&'static str, &'static str),
}

impl DtEdit {
    pub fn describe(&self) -> String {
        let what = match self.change {
            Change::Disable => format!("{} disabled", self.node),
            Change::DeleteNode => format!("{} deleted", self.node),
            Change::DeleteProperty(p) => format!("{}:{p} deleted", self.node),
            Change::SetString(p, v) => format!("{}:{p} = \"{v}\"", self.node),
        };
        format!("{what} ({})", self.why)
    }
}

const fn edit(node: &'static str, change: Change, why: &'static str) -> DtEdit {
    DtEdit { node, change, why }
}

const NOT_MODELLED: &str = "QEMU does not model it; probing it faults";
const ARASAN: &str = "/soc/mmc@7e300000";
const CARD_SLOT: &str =
    "QEMU puts the -sd card on this Arasan controller (the board's Wi-Fi SDIO): a removable SD slot there, no Wi-Fi chip";

/// raspi4b, with the Pi 4 B's own device tree.
const RASPI4B: &[DtEdit] = &[
    edit(
        "/soc/clock@7ef00000",
        Change::Disable,
        "the HDMI clock block (DVP): QEMU does not model it; reading its gates aborts the boot",
    ),
    edit(
        "/soc/interrupt-controller@7ef00100",
        Change::Disable,
        NOT_MODELLED,
    ),
    edit("/soc/i2c@7ef04500", Change::Disable, NOT_MODELLED),
    edit("/soc/i2c@7ef09500", Change::Disable, NOT_MODELLED),
    edit("/soc/hdmi@7ef00700", Change::Disable, NOT_MODELLED),
    edit("/soc/hdmi@7ef05700", Change::Disable, NOT_MODELLED),
    edit("/scb/pcie@7d500000", Change::Disable, NOT_MODELLED),
    edit("/scb/ethernet@7d580000", Change::Disable, NOT_MODELLED),
    edit("/soc/mmc@7e300000/wifi@1", Change::DeleteNode, CARD_SLOT),
    edit(ARASAN, Change::DeleteProperty("mmc-pwrseq"), CARD_SLOT),
    edit(ARASAN, Change::DeleteProperty("non-removable"), CARD_SLOT),
    edit(
        "/soc/usb@7e980000",
        Change::SetString("dr_mode", "host"),
        "QEMU's dwc2 is a USB host (the board's USB-C port is a device port): the harness's USB keyboard, its way to ask for a power-off, plugs in there",
    ),
];

/// The card's device tree a machine boots with, and the edits it needs.
pub fn machine_device_tree(machine: QemuBoard) -> Option<(&'static str, &'static [DtEdit])> {
    match machine {
        QemuBoard::Raspi3b => Some(("bcm2837-rpi-3-b.dtb", &[])),
        QemuBoard::Raspi4b => Some(("bcm2711-rpi-4-b.dtb", RASPI4B)),
        QemuBoard::QemuX86_64 | QemuBoard::QemuAarch64 => None,
    }
}

/// `dtb` with `edits` applied; `name` is for messages.
pub fn emulation_copy(name: &str, dtb: &[u8], edits: &[DtEdit]) -> Result<Vec<u8>> {
    let fdt = Fdt::new(dtb).map_err(|e| anyhow::anyhow!("{name} is not a device tree: {e}"))?;
    let mut tree = DeviceTree::from_fdt(&fdt);
    for e in edits {
        apply(&mut tree, e).with_context(|| {
            format!(
                "{name}: emulation edit {}: has this kernel's device tree changed? \
                 (the edits are in builder/src/imagetest/emulated_dtb.rs)",
                e.describe()
            )
        })?;
    }
    Ok(tree.to_dtb())
}

fn apply(tree: &mut DeviceTree, e: &DtEdit) -> Result<()> {
    let missing = || anyhow::anyhow!("no node {}", e.node);
    if let Change::DeleteNode = e.change {
        let (parent, child) = e.node.rsplit_once('/').ok_or_else(missing)?;
        let parent = if parent.is_empty() { "/" } else { parent };
        tree.find_node_mut(parent)
            .and_then(|p| p.remove_child(child))
            .ok_or_else(missing)?;
        return Ok(());
    }
    let node = tree.find_node_mut(e.node).ok_or_else(missing)?;
    let set = |node: &mut dtoolkit::model::DeviceTreeNode, property: &str, value: &str| match node
        .property_mut(property)
    {
        Some(p) => p.set_value(value),
        None => node.add_property(DeviceTreeProperty::new_unchecked(property, value)),
    };
    match e.change {
        Change::Disable => set(node, "status", "disabled"),
        Change::SetString(property, value) => set(node, property, value),
        Change::DeleteProperty(property) => {
            node.remove_property(property)
                .with_context(|| format!("{} has no {property}", e.node))?;
        }
        Change::DeleteNode => unreachable!("handled above"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::kernel::devicetree::{tests::sd_card_tree, DeviceTree as Parsed};

    #[test]
    fn edits_change_only_the_copy_and_a_missing_node_is_named() {
        let card = sd_card_tree();
        let edits = [
            edit("/soc/cprman@7e101000", Change::Disable, "test"),
            edit("/soc/gpio@7e200000/emmc_pins", Change::DeleteNode, "test"),
            edit(
                "/soc/mmc@7e340000",
                Change::DeleteProperty("vqmmc-supply"),
                "test",
            ),
            edit(
                "/soc/mmc@7e340000",
                Change::SetString("dr_mode", "host"),
                "test",
            ),
        ];
        let copy = emulation_copy("test.dtb", &card, &edits).unwrap();
        let tree = Parsed::parse("copy", &copy).unwrap();
        let node = |p: &str| tree.find(p).map(|id| tree.node(id).clone());
        assert!(!node("/soc/cprman@7e101000").unwrap().enabled());
        assert!(node("/soc/gpio@7e200000/emmc_pins").is_none());
        let mmc = node("/soc/mmc@7e340000").unwrap();
        assert!(!mmc.has("vqmmc-supply") && mmc.has("clocks"));
        assert_eq!(mmc.strings("dr_mode"), ["host"]);
        // The card's own tree is untouched.
        let original = Parsed::parse("card", &card).unwrap();
        let id = original.find("/soc/mmc@7e340000").unwrap();
        assert!(original.node(id).has("vqmmc-supply"));

        let gone = [edit("/soc/hdmi@7ef00700", Change::Disable, "test")];
        let error = emulation_copy("test.dtb", &card, &gone).unwrap_err();
        let text = format!("{error:#}");
        assert!(
            text.contains("/soc/hdmi@7ef00700") && text.contains("emulated_dtb.rs"),
            "{text}"
        );
    }

    #[test]
    fn every_pi_machine_has_its_device_tree() {
        assert_eq!(
            machine_device_tree(QemuBoard::Raspi4b).map(|(dtb, _)| dtb),
            Some("bcm2711-rpi-4-b.dtb")
        );
        assert!(machine_device_tree(QemuBoard::Raspi3b).is_some());
        assert!(machine_device_tree(QemuBoard::QemuAarch64).is_none());
    }
}
