//! Building the device binaries from the edgeimg source tree with cargo (`--profile device`):
//! what `cargo run` and the tests do, what `cargo xtask dist` packages, and what an installed
//! edgeimg does when asked to. Cargo makes a rebuild a no-op when nothing changed. Each cargo
//! run is one step: a spinner with the crate being compiled on a terminal, one line without.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use edge_config::Arch;
use indicatif::{ProgressBar, ProgressStyle};

use super::folder::BinaryKind;
use crate::image::onnxruntime::{loader_in_image, ENGINE_DIR};

/// The edgeimg workspace: cargo builds the device binaries there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTree {
    pub root: PathBuf,
}

impl SourceTree {
    /// The workspace this edgeimg was compiled from, when it is still there.
    pub fn of_this_build() -> Option<SourceTree> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()?
            .to_path_buf();
        root.join("runtime/init/Cargo.toml")
            .is_file()
            .then_some(SourceTree { root })
    }

    /// `$CARGO_TARGET_DIR` (relative to the workspace), else `<workspace>/target`.
    pub fn target_dir(&self) -> PathBuf {
        match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
            Some(p) if p.is_absolute() => p,
            Some(p) => self.root.join(p),
            None => self.root.join("target"),
        }
    }

    /// Whether the running edgeimg is one this tree's cargo built (`cargo run`, the tests).
    pub fn built_the_running_edgeimg(&self) -> bool {
        let target = std::fs::canonicalize(self.target_dir()).unwrap_or(self.target_dir());
        std::env::current_exe().is_ok_and(|exe| exe.starts_with(target))
    }

    /// `git describe` of the tree (`-dirty` with local changes), or "unknown" outside git.
    pub fn commit(&self) -> String {
        Command::new("git")
            .args(["describe", "--always", "--dirty", "--abbrev=40"])
            .current_dir(&self.root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    /// Where cargo leaves the `device` profile's binaries for `target`.
    fn output_dir(&self, target: &str) -> PathBuf {
        self.target_dir().join(target).join("device")
    }

    /// The static musl builds of `kinds` (edge-init and/or the tract edge-runtime) for `arch`.
    /// One cargo run per crate: built together, cargo unifies their dependencies' features,
    /// and edge-init built beside edge-runtime is not the same file as edge-init built alone,
    /// so images of the two engines (and builds running side by side) got different edge-inits.
    pub fn build_static(&self, arch: Arch, kinds: &[BinaryKind]) -> Result<Vec<PathBuf>> {
        let triple = arch.musl_target();
        let dir = self.output_dir(triple);
        kinds
            .iter()
            .map(|kind| {
                let name = kind.file_name();
                let mut cargo = self.cargo("build", triple);
                cargo.args(["-p", name]);
                run_step(cargo, &format!("{name} for {triple} (static, musl)"))?;
                existing(&dir, name)
            })
            .collect()
    }

    /// edge-runtime for `arch`'s glibc, ONNX Runtime only, linked to run on the image's private
    /// glibc: [`ENGINE_DIR`]'s loader as interpreter and that folder as run path. On this
    /// machine it also runs through the host's own loader (`Arch::glibc_loader`), which is how
    /// the host's reference server uses it.
    pub fn build_glibc_runtime(&self, arch: Arch) -> Result<PathBuf> {
        let triple = arch.gnu_target();
        let mut cargo = self.cargo("rustc", triple);
        cargo
            .args([
                "-p",
                "edge-runtime",
                "--bin",
                "edge-runtime",
                "--no-default-features",
            ])
            .arg("--")
            .arg(format!(
                "-Clink-arg=-Wl,--dynamic-linker={}",
                loader_in_image(arch)
            ))
            .arg(format!("-Clink-arg=-Wl,-rpath,{ENGINE_DIR}"));
        run_step(
            cargo,
            &format!("edge-runtime for {triple} (glibc, ONNX Runtime engine)"),
        )?;
        existing(&self.output_dir(triple), "edge-runtime")
    }

    fn cargo(&self, subcommand: &str, triple: &str) -> Command {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&self.root)
            .args([subcommand, "--profile", "device", "--target", triple])
            // Machine-readable progress on stdout, compiler errors rendered on stderr.
            .arg("--message-format=json-render-diagnostics")
            // The image's date is not the binaries' business, and the `cc` crate reruns build
            // scripts when it changes: a reproducible build must not recompile everything.
            .env_remove("SOURCE_DATE_EPOCH");
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(is_outer_crate_var) {
                cmd.env_remove(key);
            }
        }
        cmd
    }
}

/// What cargo sets for the crate it runs (this edgeimg under `cargo run` or `cargo test`).
/// Build scripts using the `cc` crate watch some of them (`rerun-if-env-changed`), so passing
/// them on recompiles the device binaries whenever edgeimg is started another way.
fn is_outer_crate_var(key: &str) -> bool {
    const EXACT: [&str; 9] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&key) || key.starts_with("CARGO_PKG_") || key.starts_with("CARGO_BIN_EXE_")
}

/// Run one cargo step: a spinner naming the crate being compiled on a terminal, one line
/// naming the step without one; cargo's own output is shown only when it fails.
fn run_step(mut cargo: Command, label: &str) -> Result<()> {
    let started = Instant::now();
    let spinner = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} cargo: {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    } else {
        eprintln!("edgeimg: cargo: {label}");
        None
    };
    let mut child = cargo
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(
            "cannot run cargo to build the device binaries; is Rust installed (`edgeimg doctor`)?",
        )?;
    let mut stderr = child.stderr.take().expect("piped");
    let collect_stderr = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut compiled = 0usize;
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        if let Some(name) = compiled_crate(&line) {
            compiled += 1;
            if let Some(bar) = &spinner {
                bar.set_message(format!("{label}: {compiled} compiled, now {name}"));
            }
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    let cargo_said = collect_stderr.join().unwrap_or_default();
    if let Some(bar) = &spinner {
        bar.finish_and_clear();
        if compiled > 0 {
            eprintln!(
                "edgeimg: cargo: {label}: {compiled} crate{} compiled in {:.0}s",
                if compiled == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64()
            );
        }
    }
    if !status.success() {
        eprintln!("{}", cargo_said.trim_end());
        bail!("building {label} failed (cargo's output is above); `edgeimg doctor` lists missing Rust targets and cross compilers");
    }
    Ok(())
}

/// The crate a `compiler-artifact` message says was just compiled (not one that was fresh).
fn compiled_crate(line: &str) -> Option<String> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" || message["fresh"] != false {
        return None;
    }
    message["target"]["name"].as_str().map(str::to_string)
}

fn existing(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!("cargo reported success but {} is missing", path.display());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_cargo_sets_for_the_running_crate_is_dropped() {
        for dropped in [
            "CARGO_PKG_NAME",
            "CARGO_MANIFEST_DIR",
            "CARGO_BIN_EXE_edgeimg",
            "OUT_DIR",
        ] {
            assert!(is_outer_crate_var(dropped), "{dropped}");
        }
        // The user's own cargo settings still reach the device build.
        for kept in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_JOBS",
            "CARGO",
            "CARGO_NET_OFFLINE",
        ] {
            assert!(!is_outer_crate_var(kept), "{kept}");
        }
    }

    #[test]
    fn only_freshly_compiled_artifacts_count_as_progress() {
        let fresh = r#"{"reason":"compiler-artifact","target":{"name":"serde"},"fresh":true}"#;
        let built =
            r#"{"reason":"compiler-artifact","target":{"name":"tract_core"},"fresh":false}"#;
        let other = r#"{"reason":"build-finished","success":true}"#;
        assert_eq!(compiled_crate(fresh), None);
        assert_eq!(compiled_crate(built).as_deref(), Some("tract_core"));
        assert_eq!(compiled_crate(other), None);
        assert_eq!(compiled_crate("not json"), None);
    }

    #[test]
    fn this_test_runs_from_the_source_tree_it_was_built_in() {
        let tree = SourceTree::of_this_build().expect("the tests run in the workspace");
        assert!(tree.built_the_running_edgeimg());
        assert!(tree.root.join("Cargo.toml").is_file());
    }
}
