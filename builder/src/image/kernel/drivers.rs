//! Which driver takes a device-tree node: a module, through `modules.alias` and the modalias
//! the kernel will give the node's device, or code built into the kernel.
//!
//! A built-in driver is found by the aliases `modules.builtin.modinfo` records for it, where
//! the kernel records its device tables there; Debian's 6.1 does not, so then "built in" is
//! read from the kernel image itself: a built-in driver's match table holds its compatible
//! strings (NUL-terminated in `.rodata`). A module alias is looked for first, since core code
//! may name a compatible whose driver is a module (the regulator core names `regulator-fixed`).

use std::cell::OnceCell;
use std::collections::HashSet;

use edge_init::modules::index::ModuleIndex;

use super::devicetree::DtNode;

/// What drives a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// These modules' aliases match the node's modalias.
    Modules(Vec<String>),
    /// The kernel image knows one of its compatibles.
    Builtin(String),
    /// No `compatible`: its parent's driver handles it (pin groups, PHYs on an MDIO bus, ...).
    Parent,
    /// A USB device with no vendor/product driver: usbcore enumerates it, its class decides.
    UsbClass,
    /// Nothing here drives it.
    Missing(Vec<String>),
}

impl Driver {
    pub fn describe(&self) -> String {
        match self {
            Driver::Modules(m) => format!("module {}", m.join(", ")),
            Driver::Builtin(c) => format!("built in ({c})"),
            Driver::Parent => "its parent's driver".into(),
            Driver::UsbClass => "usbcore (USB class driver)".into(),
            Driver::Missing(c) => format!("no driver for {}", c.join(", ")),
        }
    }
}

pub struct DriverIndex<'a> {
    modules: &'a ModuleIndex,
    /// The built-in drivers' aliases from `modules.builtin.modinfo`.
    builtin: ModuleIndex,
    kernel_image: &'a [u8],
    /// Every NUL-terminated printable string in the kernel image, gathered only when a node
    /// has neither a module nor a recorded built-in driver (a tenth of a second on 33 MB).
    kernel_strings: OnceCell<HashSet<&'a [u8]>>,
}

impl<'a> DriverIndex<'a> {
    /// `modules`: the kernel's module index; `builtin_modinfo`: its `modules.builtin.modinfo`
    /// (empty if it has none); `kernel_image`: the uncompressed kernel.
    pub fn new(
        modules: &'a ModuleIndex,
        builtin_modinfo: &[u8],
        kernel_image: &'a [u8],
    ) -> DriverIndex<'a> {
        DriverIndex {
            modules,
            builtin: ModuleIndex::parse("", &builtin_alias_lines(builtin_modinfo), "", ""),
            kernel_image,
            kernel_strings: OnceCell::new(),
        }
    }

    fn kernel_strings(&self) -> &HashSet<&'a [u8]> {
        self.kernel_strings.get_or_init(|| {
            self.kernel_image
                .split(|&b| b == 0)
                .filter(|s| (3..=128).contains(&s.len()) && s.iter().all(|b| b.is_ascii_graphic()))
                .collect()
        })
    }

    pub fn driver(&self, node: &DtNode) -> Driver {
        let compatibles = node.compatibles();
        if compatibles.is_empty() {
            return Driver::Parent;
        }
        let modalias = if let Some(usb) = usb_modalias(&compatibles) {
            usb
        } else {
            of_modalias(node, &compatibles)
        };
        let modules: Vec<String> = self
            .modules
            .matching(&modalias)
            .into_iter()
            .map(str::to_string)
            .collect();
        if !modules.is_empty() {
            return Driver::Modules(modules);
        }
        if let Some(module) = self.builtin.matching(&modalias).first() {
            return Driver::Builtin(format!("{module}, modules.builtin.modinfo"));
        }
        if let Some(known) = compatibles
            .iter()
            .find(|c| self.kernel_strings().contains(c.as_bytes()))
        {
            return Driver::Builtin(known.clone());
        }
        if modalias.starts_with("usb:") {
            return Driver::UsbClass;
        }
        Driver::Missing(compatibles)
    }
}

/// `modules.builtin.modinfo` (`<module>.<key>=<value>` strings, NUL-separated) as
/// `modules.alias` lines for its `alias` keys.
fn builtin_alias_lines(modinfo: &[u8]) -> String {
    modinfo
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (module, pattern) = entry.split_once(".alias=")?;
            Some(format!("alias {pattern} {module}\n"))
        })
        .collect()
}

/// The modalias the kernel gives a device-tree device: `of:N<name>T<device_type>C<compatible>`
/// for each compatible (`(null)` without a device_type, as the kernel prints it).
pub fn of_modalias(node: &DtNode, compatibles: &[String]) -> String {
    let device_type = node
        .strings("device_type")
        .into_iter()
        .next()
        .unwrap_or_else(|| "(null)".into());
    let mut alias = format!("of:N{}T{device_type}", node.generic_name());
    for compatible in compatibles {
        alias.push('C');
        alias.push_str(&compatible.replace(' ', "_"));
    }
    alias
}

/// A USB device named by `usbVID,PID` (e.g. the Pi 3's on-board `usb424,ec00` Ethernet): the
/// USB modalias its device gets, its class fields unknown (zero), which matches the
/// vendor/product drivers.
fn usb_modalias(compatibles: &[String]) -> Option<String> {
    compatibles.iter().find_map(|c| {
        let (vendor, product) = c.strip_prefix("usb")?.split_once(',')?;
        let hex = |s: &str| u16::from_str_radix(s, 16).ok();
        Some(format!(
            "usb:v{:04X}p{:04X}d0000dc00dsc00dp00ic00isc00ip00in00",
            hex(vendor)?,
            hex(product)?
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::kernel::devicetree::{tests::sd_card_tree, DeviceTree};

    #[test]
    fn nodes_get_the_modalias_the_kernel_gives_them() {
        let tree = DeviceTree::parse("test.dtb", &sd_card_tree()).unwrap();
        let mmc = tree.node(tree.find("/soc/mmc@7e340000").unwrap());
        assert_eq!(
            of_modalias(mmc, &mmc.compatibles()),
            "of:NmmcT(null)Cbrcm,bcm2711-emmc2"
        );
        assert_eq!(
            usb_modalias(&["usb424,ec00".into()]).as_deref(),
            Some("usb:v0424pEC00d0000dc00dsc00dp00ic00isc00ip00in00")
        );
        assert_eq!(usb_modalias(&["brcm,bcm2835-usb".into()]), None);
    }

    #[test]
    fn a_module_alias_wins_over_a_string_in_the_kernel() {
        let tree = DeviceTree::parse("test.dtb", &sd_card_tree()).unwrap();
        let index = ModuleIndex::parse(
            "kernel/drivers/regulator/gpio-regulator.ko:\n",
            "alias of:N*T*Cregulator-gpio gpio_regulator\n",
            "",
            "",
        );
        // The regulator core names `regulator-gpio` too.
        let image = b"\0regulator-gpio\0brcm,bcm2711-gpio\0".to_vec();
        let modinfo =
            b"clk_bcm2711_dvp.alias=of:N*T*Cbrcm,brcm2711-dvp\0clk_bcm2711_dvp.license=GPL\0";
        let drivers = DriverIndex::new(&index, modinfo, &image);
        let driver = |p: &str| drivers.driver(tree.node(tree.find(p).unwrap()));
        assert_eq!(
            driver("/sd_io_1v8_reg"),
            Driver::Modules(vec!["gpio_regulator".into()])
        );
        assert_eq!(
            driver("/soc/gpio@7e200000"),
            Driver::Builtin("brcm,bcm2711-gpio".into())
        );
        assert_eq!(driver("/soc/gpio@7e200000/emmc_pins"), Driver::Parent);
        assert_eq!(
            driver("/soc/clock@7ef00000"),
            Driver::Builtin("clk_bcm2711_dvp, modules.builtin.modinfo".into())
        );
        assert_eq!(
            driver("/soc/mmc@7e340000"),
            Driver::Missing(vec!["brcm,bcm2711-emmc2".into()])
        );
    }
}
