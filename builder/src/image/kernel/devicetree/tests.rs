//! Supplier parsing on a small device tree written with dtoolkit, shaped like the Pi 4's SD
//! path: an SD host on a bus with a regulator (itself on a GPIO), a clock, pin control, a
//! power sequence, and a disabled supplier the kernel never waits for.

use dtoolkit::model::{DeviceTree as Model, DeviceTreeNode, DeviceTreeProperty};

use super::suppliers::{closure, suppliers};
use super::DeviceTree;

fn prop<T: dtoolkit::ToPropertyValue>(name: &str, value: T) -> DeviceTreeProperty {
    DeviceTreeProperty::new(name, value).unwrap()
}

fn node(name: &str, props: Vec<DeviceTreeProperty>) -> DeviceTreeNode {
    let mut n = DeviceTreeNode::new(name).unwrap();
    for p in props {
        n.add_property(p);
    }
    n
}

/// phandles: 1 gpio controller, 2 its pin group, 3 clock provider, 4 regulator,
/// 5 power sequence, 6 disabled clock, 7 interrupt controller.
pub fn sd_card_tree() -> Vec<u8> {
    let mut tree = Model::new();
    tree.root.add_property(prop("interrupt-parent", 7u32));
    let mut soc = node("soc", vec![prop("compatible", "simple-bus")]);
    let mut gpio = node(
        "gpio@7e200000",
        vec![
            prop("compatible", "brcm,bcm2711-gpio"),
            prop("gpio-controller", &[][..] as &[u8]),
            prop("#gpio-cells", 2u32),
            prop("phandle", 1u32),
        ],
    );
    gpio.add_child(node("emmc_pins", vec![prop("phandle", 2u32)]));
    soc.add_child(gpio);
    soc.add_child(node(
        "cprman@7e101000",
        vec![
            prop("compatible", "brcm,bcm2711-cprman"),
            prop("#clock-cells", 1u32),
            prop("phandle", 3u32),
        ],
    ));
    soc.add_child(node(
        "clock@7ef00000",
        vec![
            prop("compatible", "brcm,brcm2711-dvp"),
            prop("#clock-cells", 1u32),
        ],
    ));
    soc.add_child(node(
        "intc@40041000",
        vec![
            prop("compatible", "arm,gic-400"),
            prop("interrupt-controller", &[][..] as &[u8]),
            prop("phandle", 7u32),
        ],
    ));
    soc.add_child(node(
        "dsi@7e209000",
        vec![
            prop("compatible", "brcm,bcm2835-dsi0"),
            prop("#clock-cells", 1u32),
            prop("status", "disabled"),
            prop("phandle", 6u32),
        ],
    ));
    soc.add_child(node(
        "mmc@7e340000",
        vec![
            prop("compatible", "brcm,bcm2711-emmc2"),
            // Two clock specifiers of one cell each; the second provider is disabled.
            prop("clocks", [3u32, 51, 6, 0]),
            prop("vqmmc-supply", 4u32),
            prop("pinctrl-names", "default"),
            prop("pinctrl-0", 2u32),
            prop("mmc-pwrseq", 5u32),
            prop("interrupts", [0u32, 126, 4]),
        ],
    ));
    tree.root.add_child(soc);
    tree.root.add_child(node(
        "sd_io_1v8_reg",
        vec![
            prop("compatible", "regulator-gpio"),
            prop("gpios", [1u32, 4, 0]),
            prop("phandle", 4u32),
        ],
    ));
    tree.root.add_child(node(
        "wifi-pwrseq",
        vec![
            prop("compatible", "mmc-pwrseq-simple"),
            prop("reset-gpios", [1u32, 1, 1]),
            prop("phandle", 5u32),
        ],
    ));
    tree.to_dtb()
}

fn paths(tree: &DeviceTree, ids: impl Iterator<Item = usize>) -> Vec<String> {
    ids.map(|id| tree.node(id).path.clone()).collect()
}

#[test]
fn a_node_needs_its_bus_and_the_providers_its_phandles_name() {
    let tree = DeviceTree::parse("test.dtb", &sd_card_tree()).unwrap();
    let mmc = tree.find("/soc/mmc@7e340000").unwrap();
    let edges = suppliers(&tree, mmc);
    let found: Vec<(String, String)> = edges
        .iter()
        .map(|e| (tree.node(e.supplier).path.clone(), e.via.clone()))
        .collect();
    for wanted in [
        ("/soc", "parent"),
        ("/soc/cprman@7e101000", "clocks"),
        ("/sd_io_1v8_reg", "vqmmc-supply"),
        ("/soc/gpio@7e200000/emmc_pins", "pinctrl-0"),
        ("/wifi-pwrseq", "mmc-pwrseq"),
        // No interrupt-parent of its own: the root's.
        ("/soc/intc@40041000", "interrupts"),
    ] {
        assert!(
            found.contains(&(wanted.0.to_string(), wanted.1.to_string())),
            "{wanted:?} not in {found:?}"
        );
    }
    assert!(
        !found.iter().any(|(p, _)| p.contains("dsi")),
        "a disabled provider is nobody's supplier: {found:?}"
    );
}

#[test]
fn the_closure_reaches_the_regulators_gpio_controller() {
    let tree = DeviceTree::parse("test.dtb", &sd_card_tree()).unwrap();
    let mmc = tree.find("/soc/mmc@7e340000").unwrap();
    let reached = closure(&tree, &[mmc]);
    let all = paths(&tree, reached.iter().map(|r| r.node));
    assert_eq!(all[0], "/soc/mmc@7e340000");
    assert!(all.contains(&"/soc/gpio@7e200000".to_string()), "{all:?}");
    let regulator = reached
        .iter()
        .find(|r| tree.node(r.node).path == "/sd_io_1v8_reg")
        .unwrap();
    let (by, via) = regulator.needed_by.clone().unwrap();
    assert_eq!(
        (tree.node(by).path.as_str(), via.as_str()),
        ("/soc/mmc@7e340000", "vqmmc-supply")
    );
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "each node once");
}

#[test]
fn garbage_is_an_error_naming_the_file() {
    let error = DeviceTree::parse("broken.dtb", b"not a device tree").unwrap_err();
    assert!(error.to_string().contains("broken.dtb"), "{error}");
}
