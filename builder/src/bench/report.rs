//! Everything one run measured, as the JSON file holds it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::boot::BootFigures;
use super::build::BuildFigures;
use super::flash::{ratio, FlashFigures};
use super::floor::FloorFigures;
use super::inference::{EngineCost, InferenceFigures, InferenceRatio};
use super::stock_alpine::StockFigures;
use super::system_update::SystemUpdateFigures;
use super::targets::TargetFigure;
use super::update::UpdateFigures;
use super::{boot, build, flash, floor, inference, stock_alpine, system_update, update, Phase};
use crate::writers::atomic::AtomicFile;

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub edgeimg_version: &'static str,
    pub host: Host,
    /// What each section's figures measured.
    pub measures: BTreeMap<&'static str, &'static str>,
    pub builds: Vec<BuildFigures>,
    pub boots: Vec<BootFigures>,
    /// Each direct-boot kernel reaching a bare init: the floor under boot-to-ready.
    pub floors: Vec<FloorFigures>,
    pub stock_alpine: Vec<StockFigures>,
    pub boot_ratios: Vec<BootRatio>,
    pub inference: Vec<InferenceFigures>,
    pub inference_ratios: Vec<InferenceRatio>,
    /// Each engine's image size and boot to ready, from the guest inference images.
    pub engine_costs: Vec<EngineCost>,
    pub flashes: Vec<FlashFigures>,
    pub updates: Vec<UpdateFigures>,
    pub system_updates: Vec<SystemUpdateFigures>,
    /// The size and speed targets beside this run's figures.
    pub targets: Vec<TargetFigure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub arch: &'static str,
    pub cpus: usize,
    /// `/proc/loadavg` when the run started: the host is shared, and load moves every figure.
    pub loadavg_at_start: Option<String>,
}

/// An image's boot against stock Alpine's on the same QEMU machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootRatio {
    pub recipe: String,
    pub arch: String,
    pub qemu_machine: String,
    pub edgeimg_ready_s: f64,
    pub stock_login_s: f64,
    /// edgeimg_ready_s / stock_login_s.
    pub ratio: f64,
}

impl BootRatio {
    /// One ratio per image boot that has a stock boot on the same machine.
    pub fn pair(boots: &[BootFigures], stock: &[StockFigures]) -> Vec<BootRatio> {
        boots
            .iter()
            .filter_map(|b| {
                let s = stock.iter().find(|s| s.qemu_board == b.qemu_board)?;
                Some(BootRatio {
                    recipe: b.recipe.clone(),
                    arch: b.arch.clone(),
                    qemu_machine: b.qemu_machine.clone(),
                    edgeimg_ready_s: b.host_ready_s,
                    stock_login_s: s.host_login_s,
                    ratio: ratio(b.host_ready_s, s.host_login_s),
                })
            })
            .collect()
    }
}

impl BenchReport {
    pub fn new(phases: &BTreeSet<Phase>) -> BenchReport {
        let mut measures = BTreeMap::new();
        for phase in phases {
            let (key, text) = match phase {
                Phase::Build => ("builds", build::MEASURES),
                Phase::Boot => {
                    measures.insert("floors", floor::MEASURES);
                    ("boots", boot::MEASURES)
                }
                Phase::Alpine => ("stock_alpine", stock_alpine::MEASURES),
                Phase::Inference => ("inference", inference::MEASURES),
                Phase::Flash => ("flashes", flash::MEASURES),
                Phase::Update => ("updates", update::MEASURES),
                Phase::SystemUpdate => ("system_updates", system_update::MEASURES),
            };
            measures.insert(key, text);
        }
        BenchReport {
            edgeimg_version: env!("CARGO_PKG_VERSION"),
            host: Host {
                arch: std::env::consts::ARCH,
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                loadavg_at_start: std::fs::read_to_string("/proc/loadavg")
                    .ok()
                    .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
            },
            measures,
            builds: Vec::new(),
            boots: Vec::new(),
            floors: Vec::new(),
            stock_alpine: Vec::new(),
            boot_ratios: Vec::new(),
            inference: Vec::new(),
            inference_ratios: Vec::new(),
            engine_costs: Vec::new(),
            flashes: Vec::new(),
            updates: Vec::new(),
            system_updates: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Write the report as pretty JSON, all or nothing.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        let mut out = AtomicFile::create(path)?;
        std::io::Write::write_all(out.file(), &json)
            .with_context(|| format!("cannot write {}", path.display()))?;
        out.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(recipe: &str, qemu_board: &str, s: f64) -> BootFigures {
        BootFigures {
            recipe: recipe.into(),
            board: "b".into(),
            qemu_board: qemu_board.into(),
            qemu_machine: "m".into(),
            arch: "a".into(),
            accel: "tcg".into(),
            host_ready_s: s,
            guest_ms_since_boot: 1,
            poweroff_s: 0.1,
        }
    }

    #[test]
    fn ratios_pair_boots_on_the_same_machine_only() {
        let stock = StockFigures {
            arch: "x86_64".into(),
            qemu_board: "qemu-x86_64".into(),
            qemu_machine: "q35".into(),
            accel: "tcg".into(),
            image: "i".into(),
            cmdline: "c".into(),
            host_login_s: 80.0,
        };
        let pairs = BootRatio::pair(
            &[
                boot("edge-x86", "qemu-x86_64", 8.0),
                boot("edge-pi", "raspi3b", 20.0),
            ],
            &[stock],
        );
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert_eq!(pairs[0].recipe, "edge-x86");
        assert_eq!(pairs[0].ratio, 0.1);
    }
}
