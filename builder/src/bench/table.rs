//! The human-readable report: one table per section, each followed by what it measured.

use bytesize::ByteSize;

use super::report::BenchReport;
use super::stats::each_ms;
use super::{boot, build, flash, floor, inference, stock_alpine, system_update, update};

/// Column-aligned text: the first `text_columns` columns left-aligned, the rest (figures)
/// right-aligned.
#[derive(Debug, Clone)]
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    text_columns: usize,
}

impl Table {
    pub fn new(title: &str, headers: &[&str], text_columns: usize) -> Table {
        Table {
            title: title.to_string(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            text_columns,
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                std::iter::once(&self.headers)
                    .chain(&self.rows)
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = (0..columns)
                .map(|c| {
                    let cell = cells.get(c).map(String::as_str).unwrap_or("");
                    if c < self.text_columns {
                        format!("{cell:<w$}", w = widths[c])
                    } else {
                        format!("{cell:>w$}", w = widths[c])
                    }
                })
                .collect();
            format!("  {}\n", parts.join("  ").trim_end())
        };
        let mut out = format!("{}\n", self.title);
        out.push_str(&line(&self.headers));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// Words of `text` in lines of at most `width` characters (a longer word gets a line of its
/// own), each line starting with `indent`.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            out.push_str(&format!("{indent}{line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{indent}{line}\n"));
    }
    out
}

fn s(seconds: f64) -> String {
    format!("{seconds:.2}")
}

fn bytes(n: u64) -> String {
    ByteSize(n).to_string()
}

fn times(ratio: f64) -> String {
    format!("{ratio:.3}x")
}

const WIDTH: usize = 100;

/// The whole report, one section per measured thing that ran.
pub fn render(report: &BenchReport) -> String {
    let mut sections = Vec::new();
    let section = |sections: &mut Vec<String>, table: Table, measures: &str| {
        sections.push(format!(
            "{}{}",
            table.render(),
            wrap(&format!("measured: {measures}"), WIDTH, "  ")
        ));
    };
    if !report.builds.is_empty() {
        let mut t = Table::new(
            "Build time",
            &["recipe", "board", "arch", "cold s", "warm s", "packages"],
            3,
        );
        let mut sizes = Table::new("Image size", &["recipe", "output", "file", "size"], 3);
        for b in &report.builds {
            t.row(vec![
                b.recipe.clone(),
                b.board.clone(),
                b.arch.clone(),
                s(b.cold_s),
                s(b.warm_s),
                b.packages.to_string(),
            ]);
            for o in &b.outputs {
                sizes.row(vec![
                    b.recipe.clone(),
                    o.kind.clone(),
                    o.file.clone(),
                    bytes(o.bytes),
                ]);
            }
            if let (Some(size), Some(mapped)) = (b.disk_bytes, b.disk_mapped_bytes) {
                sizes.row(vec![
                    b.recipe.clone(),
                    "bmap mapped".into(),
                    format!(
                        "{:.1}% of the disk",
                        100.0 * flash::ratio(mapped as f64, size as f64)
                    ),
                    bytes(mapped),
                ]);
            }
        }
        section(&mut sections, t, build::MEASURES);
        sections.push(sizes.render());
    }
    if !report.boots.is_empty() {
        let mut t = Table::new(
            "Boot to ready",
            &[
                "recipe",
                "board",
                "qemu machine",
                "accel",
                "host s to ready",
                "guest ms",
                "power-off s",
            ],
            4,
        );
        for b in &report.boots {
            t.row(vec![
                b.recipe.clone(),
                b.board.clone(),
                b.qemu_machine.clone(),
                b.accel.clone(),
                s(b.host_ready_s),
                b.guest_ms_since_boot.to_string(),
                s(b.poweroff_s),
            ]);
        }
        section(&mut sections, t, boot::MEASURES);
    }
    if !report.floors.is_empty() {
        let mut t = Table::new(
            "Boot floor: the same kernel to a bare init",
            &[
                "recipe",
                "qemu machine",
                "accel",
                "initramfs",
                "guest ms to init",
                "each boot",
            ],
            3,
        );
        for f in &report.floors {
            t.row(vec![
                f.recipe.clone(),
                f.qemu_machine.clone(),
                f.accel.clone(),
                bytes(f.initramfs_bytes),
                f.guest_init_ms.to_string(),
                each_ms(&f.guest_init_ms_each),
            ]);
        }
        section(&mut sections, t, floor::MEASURES);
    }
    if !report.stock_alpine.is_empty() {
        let mut t = Table::new(
            "Stock Alpine 3.23 boot, and the images' boot as a share of it",
            &[
                "qemu machine",
                "arch",
                "accel",
                "stock host s to login",
                "image",
                "image host s to ready",
                "ratio",
            ],
            3,
        );
        for st in &report.stock_alpine {
            let pairs: Vec<_> = report
                .boot_ratios
                .iter()
                .filter(|r| r.qemu_machine == st.qemu_machine && r.arch == st.arch)
                .collect();
            let stock = vec![
                st.qemu_machine.clone(),
                st.arch.clone(),
                st.accel.clone(),
                s(st.host_login_s),
            ];
            if pairs.is_empty() {
                let mut row = stock.clone();
                row.extend(["(boot not run)".to_string(), "-".into(), "-".into()]);
                t.row(row);
            }
            for r in pairs {
                let mut row = stock.clone();
                row.extend([r.recipe.clone(), s(r.edgeimg_ready_s), times(r.ratio)]);
                t.row(row);
            }
        }
        section(&mut sections, t, stock_alpine::MEASURES);
    }
    if !report.inference.is_empty() {
        let mut t = Table::new(
            "Inference",
            &[
                "where",
                "engine",
                "model",
                "runs",
                "engine p50 ms",
                "p99 ms",
                "request p50 ms",
                "p99 ms",
                "HTTP ms",
                "clients",
                "req/s",
            ],
            3,
        );
        let ms = |x: f64| format!("{x:.3}");
        for f in &report.inference {
            let (request_p50, request_p99, http) = match &f.latency {
                Some(l) => (
                    ms(l.request_p50_ms),
                    ms(l.request_p99_ms),
                    ms(l.http_overhead_p50_ms),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            t.row(vec![
                f.place.clone(),
                f.engine.clone(),
                f.model.clone(),
                f.runs.to_string(),
                ms(f.p50_ms),
                ms(f.p99_ms),
                request_p50,
                request_p99,
                http,
                f.clients.to_string(),
                format!("{:.1}", f.per_second),
            ]);
        }
        section(&mut sections, t, inference::MEASURES);
        let mut r = Table::new(
            "Inference ratios (engine p50 over engine p50, same run)",
            &[
                "where",
                "model",
                "tract/onnxruntime",
                "edge onnxruntime/python",
                "edge request/python",
            ],
            2,
        );
        let ratio = |x: Option<f64>| x.map_or("-".into(), times);
        for p in &report.inference_ratios {
            r.row(vec![
                p.place.clone(),
                p.model.clone(),
                ratio(p.tract_over_onnxruntime),
                ratio(p.edge_over_python),
                ratio(p.edge_request_over_python),
            ]);
        }
        sections.push(r.render());
    }
    if !report.engine_costs.is_empty() {
        let mut t = Table::new(
            "Engine cost (the guest inference images, same run)",
            &[
                "where",
                "engine",
                "initramfs",
                "engine libraries",
                "ready host s",
                "ready guest ms",
                "optimised guest ms",
            ],
            2,
        );
        for c in &report.engine_costs {
            t.row(vec![
                c.place.clone(),
                c.engine.clone(),
                bytes(c.initramfs_bytes),
                bytes(c.engine_library_bytes),
                s(c.host_ready_s),
                c.guest_ready_ms.to_string(),
                c.guest_optimised_ms.to_string(),
            ]);
        }
        sections.push(t.render());
    }
    if !report.flashes.is_empty() {
        let mut t = Table::new(
            "Flash vs dd",
            &[
                "image",
                "size",
                "mapped",
                "edgeimg s",
                "write s",
                "verify s",
                "dd s",
                "bmaptool s",
                "edgeimg/dd",
            ],
            1,
        );
        for f in &report.flashes {
            t.row(vec![
                f.image.clone(),
                bytes(f.image_bytes),
                format!("{:.1}%", 100.0 * f.mapped_share),
                s(f.edgeimg_s),
                s(f.edgeimg_write_s),
                s(f.edgeimg_verify_s),
                s(f.dd_s),
                f.bmaptool_s.map_or("-".into(), s),
                times(f.edgeimg_over_dd),
            ]);
        }
        section(&mut sections, t, flash::MEASURES);
    }
    if !report.updates.is_empty() {
        let mut t = Table::new(
            "Model updates",
            &[
                "recipe",
                "arch",
                "accel",
                "model",
                "upload to serving s",
                "at rest p50/p99 ms",
                "during swap p50/p99 ms",
                "requests",
                "failed",
            ],
            3,
        );
        for u in &report.updates {
            t.row(vec![
                u.recipe.clone(),
                u.arch.clone(),
                u.accel.clone(),
                bytes(u.model_bytes),
                s(u.upload_to_serving_median_s),
                format!("{:.1} / {:.1}", u.at_rest_p50_ms, u.at_rest_p99_ms),
                format!("{:.1} / {:.1}", u.during_swap_p50_ms, u.during_swap_p99_ms),
                u.during_swap_requests.to_string(),
                u.failed.to_string(),
            ]);
        }
        section(&mut sections, t, update::MEASURES);
    }
    if !report.system_updates.is_empty() {
        let mut t = Table::new(
            "System updates (A/B)",
            &[
                "recipe",
                "board",
                "QEMU machine",
                "accel",
                "update",
                "push s",
                "write s",
                "push to committed s",
            ],
            3,
        );
        for u in &report.system_updates {
            t.row(vec![
                u.recipe.clone(),
                u.board.clone(),
                u.qemu_machine.clone(),
                u.accel.clone(),
                bytes(u.update_bytes),
                s(u.push_s),
                u.write_s.map_or_else(|| "-".to_string(), s),
                s(u.push_to_committed_s),
            ]);
        }
        section(&mut sections, t, system_update::MEASURES);
    }
    if !report.targets.is_empty() {
        let mut t = Table::new("Targets", &["target", "goal", "measured", "met"], 4);
        for r in &report.targets {
            t.row(vec![
                r.target.clone(),
                r.goal.clone(),
                r.measured.clone(),
                match r.met {
                    Some(true) => "met".into(),
                    Some(false) => "NOT met".into(),
                    None => "-".into(),
                },
            ]);
        }
        sections.push(t.render());
    }
    let host = &report.host;
    sections.push(format!(
        "host: {} with {} CPUs, load average at start {}\n",
        host.arch,
        host.cpus,
        host.loadavg_at_start.as_deref().unwrap_or("unknown")
    ));
    sections.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_figures_right() {
        let mut t = Table::new("T", &["name", "s"], 1);
        t.row(vec!["edge-x86".into(), "1.50".into()]);
        t.row(vec!["pi".into(), "12.25".into()]);
        assert_eq!(
            t.render(),
            "T\n  name          s\n  edge-x86   1.50\n  pi        12.25\n"
        );
    }

    #[test]
    fn a_short_row_leaves_its_cells_blank() {
        let mut t = Table::new("T", &["a", "b", "c"], 3);
        t.row(vec!["x".into()]);
        assert_eq!(t.render(), "T\n  a  b  c\n  x\n");
    }

    #[test]
    fn wraps_at_the_width_and_keeps_long_words_whole() {
        assert_eq!(wrap("aa bb cc", 7, "  "), "  aa bb\n  cc\n");
        assert_eq!(wrap("abcdefghij x", 5, ""), "abcdefghij\nx\n");
        assert_eq!(wrap("", 10, "  "), "");
    }
}
