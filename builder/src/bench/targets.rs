//! The size and speed targets, each beside the figure this run measured and whether it was
//! met. Only what this run measured is judged: a phase left out (`--only`) leaves its rows out.

use serde::Serialize;

use super::report::BenchReport;
use super::stats::each_ms;

const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetFigure {
    pub target: String,
    pub goal: String,
    pub measured: String,
    /// `None` for a figure reported without a bound.
    pub met: Option<bool>,
}

/// Two decimals: a size 29 KB over a 6 MiB goal must not read as 6.0 MiB.
fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / MIB as f64)
}

pub fn evaluate(report: &BenchReport) -> Vec<TargetFigure> {
    let mut rows = Vec::new();
    for cost in &report.engine_costs {
        let limit = if cost.engine == "tract" { 6 } else { 12 };
        rows.push(bound(
            format!("initramfs, {}, {}", cost.engine, cost.place),
            format!("<= {limit} MiB"),
            mib(cost.initramfs_bytes),
            cost.initramfs_bytes <= limit * MIB,
        ));
    }
    for b in report.builds.iter().filter(|b| b.board.starts_with("rpi")) {
        if let Some(mapped) = b.disk_mapped_bytes {
            rows.push(bound(
                format!("Pi card mapped, {}", b.recipe),
                "<= 35 MiB".into(),
                mib(mapped),
                mapped <= 35 * MIB,
            ));
        }
        rows.push(bound(
            format!("warm rebuild, {}", b.recipe),
            "<= 2 s".into(),
            format!("{:.2} s", b.warm_s),
            b.warm_s <= 2.0,
        ));
    }
    // Against the floor booted beside the image's own boots, not the boot phase's: the host's
    // load moves both alike only when they run together.
    for cost in report.engine_costs.iter().filter(|c| c.engine == "tract") {
        if let Some(floor_ms) = cost.floor_ms {
            let over = cost.guest_ready_ms as i64 - floor_ms as i64;
            rows.push(bound(
                format!("boot to ready, tract, {}", cost.place),
                "<= floor + 1000 ms".into(),
                format!(
                    "{} ms (boots {}; floor {floor_ms} ms, boots {}; {over:+} ms; optimised plan at {} ms)",
                    cost.guest_ready_ms,
                    each_ms(&cost.guest_ready_ms_each),
                    each_ms(&cost.floor_ms_each),
                    cost.guest_optimised_ms
                ),
                over <= 1000,
            ));
        }
    }
    for ort in report
        .engine_costs
        .iter()
        .filter(|c| c.engine == "onnxruntime")
    {
        let tract = report
            .engine_costs
            .iter()
            .find(|c| c.engine == "tract" && c.place == ort.place);
        if let Some(tract) = tract {
            rows.push(TargetFigure {
                target: format!("onnxruntime start cost, {}", ort.place),
                goal: "reported".into(),
                measured: format!(
                    "{:+} ms to ready against tract, {:.1} MiB of engine libraries",
                    ort.guest_ready_ms as i64 - tract.guest_ready_ms as i64,
                    ort.engine_library_bytes as f64 / MIB as f64
                ),
                met: None,
            });
        }
    }
    for f in report
        .inference
        .iter()
        .filter(|f| f.place.starts_with("host") && f.model == "ppocr-cls")
    {
        if let Some(latency) = &f.latency {
            let us = latency.http_overhead_p50_ms * 1000.0;
            let measured = match latency.http_floor_p50_ms {
                Some(floor) => format!("{us:.0} us (this host's floor {:.0} us)", floor * 1000.0),
                None => format!("{us:.0} us"),
            };
            rows.push(bound(
                format!("HTTP overhead p50, host, {}, {}", f.engine, f.model),
                "<= 100 us".into(),
                measured,
                us <= 100.0,
            ));
        }
    }
    rows
}

fn bound(target: String, goal: String, measured: String, met: bool) -> TargetFigure {
    TargetFigure {
        target,
        goal,
        measured,
        met: Some(met),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::floor::FloorFigures;
    use crate::bench::inference::EngineCost;
    use crate::bench::stats::median_ms;

    fn cost(engine: &str, bytes: u64, ready: u64, floor_each: Vec<u64>) -> EngineCost {
        EngineCost {
            place: "guest qemu-aarch64 (virt, tcg)".into(),
            engine: engine.into(),
            initramfs_bytes: bytes,
            engine_library_bytes: 0,
            host_ready_s: 0.0,
            guest_ready_ms: ready,
            guest_ready_ms_each: vec![ready + 30, ready - 20, ready],
            guest_optimised_ms: ready + 1800,
            floor_ms: (!floor_each.is_empty()).then(|| median_ms(&floor_each)),
            floor_ms_each: floor_each,
        }
    }

    #[test]
    fn each_target_is_judged_against_its_bound_and_the_floor_booted_beside_it() {
        let mut report = BenchReport::new(&Default::default());
        report.engine_costs = vec![
            cost("tract", 5 * MIB, 1500, vec![400, 420, 390]),
            cost("onnxruntime", 12 * MIB + 29 * 1024, 3000, Vec::new()),
        ];
        // The boot phase's floor of the same machine, measured apart from the image's boots,
        // is not the one the target compares with.
        report.floors = vec![FloorFigures {
            recipe: "edge-arm64".into(),
            qemu_machine: "virt".into(),
            arch: "aarch64".into(),
            accel: "tcg".into(),
            guest_init_ms: 900,
            guest_init_ms_each: vec![900, 900, 900],
            initramfs_bytes: 1,
        }];
        let rows = evaluate(&report);
        let met = |prefix: &str| {
            rows.iter()
                .find(|r| r.target.starts_with(prefix))
                .unwrap()
                .met
        };
        assert_eq!(met("initramfs, tract"), Some(true));
        assert_eq!(met("initramfs, onnxruntime"), Some(false));
        let over = rows
            .iter()
            .find(|r| r.target.starts_with("initramfs, onnxruntime"))
            .unwrap();
        assert_eq!(
            over.measured, "12.03 MiB",
            "just over its goal, and says so"
        );
        assert_eq!(met("boot to ready, tract"), Some(false), "{rows:?}");
        assert_eq!(met("onnxruntime start cost"), None);
        let start = rows
            .iter()
            .find(|r| r.target.starts_with("onnxruntime start"))
            .unwrap();
        assert!(start.measured.starts_with("+1500 ms"), "{}", start.measured);
        let boot = rows
            .iter()
            .find(|r| r.target.starts_with("boot to ready"))
            .unwrap();
        assert!(
            boot.measured.contains(
                "1500 ms (boots 1530/1480/1500; floor 400 ms, boots 400/420/390; +1100 ms; optimised plan at 3300 ms)"
            ),
            "{}",
            boot.measured
        );
    }
}
