//! `edgeimg bench`: measure the product in one run: build time and image sizes per recipe
//! (cold and warm package cache), boot-to-ready per board, stock Alpine's boot under the same
//! QEMU for a ratio, inference latency and throughput per engine on the host and in guests
//! (against Python's onnxruntime), and `edgeimg flash` against `dd`. One module per measured
//! thing; this one only decides what runs in which order and collects the figures.

pub mod binaries;
pub mod boot;
pub mod build;
pub mod flash;
pub mod floor;
pub mod inference;
pub mod progress;
pub mod report;
pub mod stats;
pub mod stock_alpine;
pub mod system_update;
pub mod table;
pub mod targets;
pub mod update;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use edge_config::{Arch, Engine};
use edgeimg_qemu::Board as QemuBoard;

use crate::imagetest::host_server::host_arch;
use crate::imagetest::qemu_boot::qemu_board;
use crate::outputs::manifest::Manifest;
use crate::packages::{default_cache_dir, Progress};
use crate::pipeline::{build as run_build, BuildOptions};
use crate::plan::{Overrides, Plan};
use crate::recipe::LoadedRecipe;

use progress::Steps;
use report::{BenchReport, BootRatio};

/// What one run measures; `--only` picks a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Phase {
    /// Cold and warm build time, image sizes.
    Build,
    /// Boot-to-ready of each recipe's image.
    Boot,
    /// Stock Alpine's boot under the same QEMU, and its ratio to the images' boot.
    Alpine,
    /// Inference latency and throughput, tract vs onnxruntime, host and guests, and Python.
    Inference,
    /// `edgeimg flash` against `dd` for each disk image.
    Flash,
    /// Model updates on the QEMU recipes that take them: upload-to-serving time, latency
    /// during a swap.
    Update,
    /// A/B system updates on the recipes that test one, on each board: update size, push
    /// time, slot write time, push-to-committed time.
    SystemUpdate,
}

pub struct BenchOptions {
    pub recipes: Vec<PathBuf>,
    /// Empty: everything.
    pub only: Vec<Phase>,
    /// Mirror, keys and timestamp as for `edgeimg build`; an `out_dir` keeps the images there
    /// (`<out_dir>/<name>/`) instead of in the scratch folder.
    pub overrides: Overrides,
    /// For each guest's ready line or login prompt.
    pub ready_timeout: Duration,
}

/// One benchmark run, ready to go.
pub struct Bench {
    plans: Vec<Plan>,
    phases: BTreeSet<Phase>,
    /// Where the recipes' images would go by default, for the default JSON path.
    default_images: PathBuf,
    /// Holds the images (unless `out_dir` was given), package caches and flash targets;
    /// removed on drop.
    scratch: tempfile::TempDir,
    ready_timeout: Duration,
    cache_dir: PathBuf,
}

impl Bench {
    pub fn new(opts: BenchOptions) -> Result<Bench> {
        let scratch = tempfile::Builder::new()
            .prefix("edgeimg-bench-")
            .tempdir()
            .context("cannot create a scratch folder for the benchmark")?;
        let images =
            (opts.overrides.out_dir.clone()).unwrap_or_else(|| scratch.path().join("images"));
        let mut default_images = PathBuf::from("images");
        let mut plans = Vec::new();
        for recipe in &opts.recipes {
            let loaded = LoadedRecipe::load(recipe)?;
            let overrides = Overrides {
                out_dir: None,
                ..opts.overrides.clone()
            };
            let mut plan = Plan::new(&loaded, &overrides)?;
            if plans.is_empty() {
                if let Some(dir) = plan.out_dir.parent() {
                    default_images = dir.to_path_buf();
                }
            }
            plan.out_dir = images.join(&plan.name);
            plans.push(plan);
        }
        let phases: BTreeSet<Phase> = if opts.only.is_empty() {
            [
                Phase::Build,
                Phase::Boot,
                Phase::Alpine,
                Phase::Inference,
                Phase::Flash,
                Phase::Update,
                Phase::SystemUpdate,
            ]
            .into()
        } else {
            opts.only.iter().copied().collect()
        };
        Ok(Bench {
            plans,
            phases,
            default_images,
            scratch,
            ready_timeout: opts.ready_timeout,
            cache_dir: default_cache_dir()?,
        })
    }

    /// `images/bench.json` beside the recipes folder (where `edgeimg build` puts images).
    pub fn default_json_path(&self) -> PathBuf {
        self.default_images.join("bench.json")
    }

    pub fn run(&self) -> Result<BenchReport> {
        let mut steps = Steps::new(self.step_count());
        let mut report = BenchReport::new(&self.phases);
        let manifests = self.images(&mut report, &mut steps)?;

        // Each stock Alpine boot follows the boot of an image on the same emulated machine,
        // so the two halves of a ratio run under the same host load.
        let mut stock_due: Vec<QemuBoard> = if self.has(Phase::Alpine) {
            self.stock_boards()
        } else {
            Vec::new()
        };
        if self.has(Phase::Boot) {
            for (plan, manifest) in self.plans.iter().zip(&manifests) {
                steps.step(&format!("boot {}", plan.name));
                report.boots.extend(
                    boot::measure(plan, manifest, self.ready_timeout)
                        .with_context(|| format!("benchmarking the boot of {}", plan.name))?,
                );
                let board = qemu_board(plan.board);
                if manifest.boot.is_some() {
                    steps.step(&format!("boot floor of {}", plan.name));
                    report.floors.push(
                        floor::measure(
                            plan,
                            manifest,
                            board,
                            self.scratch.path(),
                            self.ready_timeout,
                        )
                        .with_context(|| format!("measuring the boot floor of {}", plan.name))?,
                    );
                }
                if stock_due.contains(&board) {
                    stock_due.retain(|b| *b != board);
                    self.stock_boot(board, &mut report, &mut steps)?;
                }
            }
        }
        for board in stock_due {
            self.stock_boot(board, &mut report, &mut steps)?;
        }
        report.boot_ratios = BootRatio::pair(&report.boots, &report.stock_alpine);

        if self.has(Phase::Inference) {
            self.inference(&mut report, &mut steps)?;
        }

        if self.has(Phase::Flash) {
            for (plan, manifest) in self.plans.iter().zip(&manifests) {
                let Some(disk) = &manifest.disk else { continue };
                steps.step(&format!("flash {} vs dd", disk.image));
                let targets = tempfile::Builder::new()
                    .prefix("flash-")
                    .tempdir_in(self.scratch.path())
                    .context("cannot create a scratch folder for the flash targets")?;
                report.flashes.push(
                    flash::measure(&plan.out_dir.join(&disk.image), targets.path())
                        .with_context(|| format!("benchmarking flashing {}", disk.image))?,
                );
            }
        }
        if self.has(Phase::Update) {
            for (plan, manifest) in self.plans.iter().zip(&manifests) {
                if !self.updates(plan) {
                    continue;
                }
                steps.step(&format!("model updates on {}", plan.name));
                report.updates.push(
                    update::measure(plan, manifest, self.ready_timeout)
                        .with_context(|| format!("benchmarking model updates on {}", plan.name))?,
                );
            }
        }
        if self.has(Phase::SystemUpdate) {
            for (plan, manifest) in self.plans.iter().zip(&manifests) {
                if system_update::update_case(plan).is_none() {
                    continue;
                }
                for board in system_update::BOARDS {
                    let on = format!("{} on {}", plan.name, board.name());
                    steps.step(&format!("system update of {on}"));
                    report.system_updates.push(
                        system_update::measure_on(
                            plan,
                            manifest,
                            board,
                            &self.cache_dir,
                            self.ready_timeout,
                        )
                        .with_context(|| format!("benchmarking a system update of {on}"))?,
                    );
                }
            }
        }
        steps.finish();
        report.targets = targets::evaluate(&report);
        Ok(report)
    }

    /// Whether the update phase measures `plan`: a QEMU board's image with a committed update
    /// check.
    fn updates(&self, plan: &Plan) -> bool {
        !plan.board.profile().disk_boot && update::update_case(plan).is_some()
    }

    /// Build every recipe: measured (cold, then warm) when the build phase runs, otherwise
    /// once, untimed, with the user's package cache when later phases need the images.
    fn images(&self, report: &mut BenchReport, steps: &mut Steps) -> Result<Vec<Manifest>> {
        let needs_built = self.has(Phase::Boot)
            || self.has(Phase::Flash)
            || self.has(Phase::Update)
            || self.has(Phase::SystemUpdate);
        if !self.has(Phase::Build) && !needs_built && !self.has(Phase::Inference) {
            return Ok(Vec::new());
        }
        steps.step("device binaries (cargo, not timed)");
        binaries::stage(
            &self.binary_targets()?,
            &self.scratch.path().join("device-binaries"),
            &self.cache_dir,
        )?;
        if !self.has(Phase::Build) && !needs_built {
            return Ok(Vec::new());
        }
        let mut manifests = Vec::new();
        for plan in &self.plans {
            if self.has(Phase::Build) {
                let caches = self.scratch.path().join("package-caches");
                let (figures, manifest) = build::measure(plan, &caches, steps)
                    .with_context(|| format!("benchmarking the build of {}", plan.name))?;
                report.builds.push(figures);
                manifests.push(manifest);
            } else {
                steps.step(&format!("build {} (not timed)", plan.name));
                let opts = BuildOptions {
                    cache_dir: self.cache_dir.clone(),
                    progress: Progress::hidden(),
                };
                let built = run_build(plan, &opts)
                    .with_context(|| format!("building {} to benchmark it", plan.name))?;
                manifests.push(built.manifest);
            }
        }
        Ok(manifests)
    }

    /// Every (arch, engine) some image or host server of this run needs binaries for.
    fn binary_targets(&self) -> Result<Vec<(Arch, Engine)>> {
        let mut targets: Vec<(Arch, Engine)> = self
            .plans
            .iter()
            .map(|p| (p.arch, p.runtime.engine))
            .collect();
        if self.has(Phase::SystemUpdate) {
            // The same recipes rebuilt for the other boards.
            for plan in self.plans.iter() {
                if system_update::update_case(plan).is_some() {
                    targets.extend(
                        system_update::BOARDS.map(|b| (b.profile().arch, plan.runtime.engine)),
                    );
                }
            }
        }
        if self.has(Phase::Inference) {
            let host = host_arch()?;
            for engine in [Engine::Tract, Engine::Onnxruntime] {
                targets.push((host, engine));
                targets.extend(self.guest_plans().map(|p| (p.arch, engine)));
            }
        }
        let mut unique = Vec::new();
        for t in targets {
            if !unique.contains(&t) {
                unique.push(t);
            }
        }
        Ok(unique)
    }

    /// The recipes the inference phase boots with each engine: those whose kernel boots an
    /// initramfs holding the whole root, the figure the engines' costs compare. A Pi image
    /// boots on raspi3b, several times slower, with the same arm64 code as virt; a QEMU disk
    /// image (`recipes/ab-aarch64.toml`) has only a small boot initramfs.
    fn guest_plans(&self) -> impl Iterator<Item = &Plan> {
        self.plans.iter().filter(|p| {
            !p.board.profile().disk_boot
                && p.outputs.contains(&crate::recipe::OutputKind::Initramfs)
        })
    }

    fn inference(&self, report: &mut BenchReport, steps: &mut Steps) -> Result<()> {
        let dir = self.scratch.path().join("inference");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        steps.step("inference: models from the rapidocr wheel");
        let models = inference::models::prepare(&self.cache_dir, &dir)?;
        report
            .inference
            .extend(inference::measure_host(&self.cache_dir, &models, steps)?);
        let model = models
            .iter()
            .find(|m| m.spec.name == inference::GUEST_MODEL)
            .context("the guest model is one of the benchmark's models")?;
        let opts = BuildOptions {
            cache_dir: self.cache_dir.clone(),
            progress: Progress::hidden(),
        };
        for plan in self.guest_plans() {
            for engine in [Engine::Tract, Engine::Onnxruntime] {
                let variant = inference::guest_plan(plan, engine, model);
                steps.step(&format!("inference {} (build, boot, run)", variant.name));
                let built = run_build(&variant, &opts)
                    .with_context(|| format!("building {}", variant.name))?;
                let (figures, cost) = inference::measure_guest(
                    &variant,
                    &built.manifest,
                    model,
                    &dir,
                    self.ready_timeout,
                )
                .with_context(|| format!("benchmarking inference on {}", variant.name))?;
                report.inference.push(figures);
                report.engine_costs.push(cost);
            }
        }
        report.inference_ratios = inference::InferenceRatio::pair(&report.inference);
        Ok(())
    }

    fn stock_boot(
        &self,
        board: QemuBoard,
        report: &mut BenchReport,
        steps: &mut Steps,
    ) -> Result<()> {
        steps.step(&format!("boot stock Alpine ({})", board.arch()));
        let figures = stock_alpine::measure(&self.cache_dir, board, self.ready_timeout)
            .with_context(|| format!("benchmarking stock Alpine's boot on {board}"))?;
        report.stock_alpine.push(figures);
        Ok(())
    }

    /// The machines stock Alpine boots on (`q35`, `virt`) that a recipe's image boots on too:
    /// a ratio across different machines would measure the machine, not the image.
    fn stock_boards(&self) -> Vec<QemuBoard> {
        let mut boards = Vec::new();
        for plan in &self.plans {
            let board = qemu_board(plan.board);
            if stock_alpine::boots_on(board) && !boards.contains(&board) {
                boards.push(board);
            }
        }
        boards
    }

    /// The recipes whose kernel boots directly (QEMU boards): each gets a floor boot.
    fn floor_count(&self) -> usize {
        self.guest_plans().count()
    }

    fn has(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }

    fn step_count(&self) -> usize {
        let n = self.plans.len();
        let images = self.has(Phase::Build)
            || self.has(Phase::Boot)
            || self.has(Phase::Flash)
            || self.has(Phase::Update)
            || self.has(Phase::SystemUpdate);
        let count = |on: bool, steps: usize| if on { steps } else { 0 };
        count(images || self.has(Phase::Inference), 1)
            + count(self.has(Phase::Build), 2 * n)
            + count(images && !self.has(Phase::Build), n)
            + count(self.has(Phase::Boot), n + self.floor_count())
            + count(self.has(Phase::Alpine), self.stock_boards().len())
            + count(
                self.has(Phase::Inference),
                1 + inference::models::MODELS.len() + 2 * self.guest_plans().count(),
            )
            + count(self.has(Phase::Flash), n)
            + count(
                self.has(Phase::Update),
                self.plans.iter().filter(|p| self.updates(p)).count(),
            )
            + count(
                self.has(Phase::SystemUpdate),
                self.plans
                    .iter()
                    .filter(|p| system_update::update_case(p).is_some())
                    .count()
                    * system_update::BOARDS.len(),
            )
    }
}

/// Seconds as JSON and the table show them: to the millisecond.
pub(crate) fn secs(d: Duration) -> f64 {
    round3(d.as_secs_f64())
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `path`'s file name, for tables.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
