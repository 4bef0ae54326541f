//! edgeimg installed from its distribution archive and used with no access to its sources: the
//! archive is packed from the edgeimg these tests run and the device binaries the suite built
//! (cargo finds them fresh), unpacked into a prefix with tar, and every command then runs in a
//! mount namespace where the source tree is an empty read-only tmpfs, from an empty folder
//! outside it, with a HOME of its own (no Rust toolchain) and only PATH and the cache from the
//! environment. There it scaffolds, builds and tests a qemu-aarch64 image (the full checks of
//! recipes/qemu-aarch64.toml: ONNX Runtime comparison, server restart, the load and attack checks with the API token from a file, signed model updates and reboots, device
//! defaults) and builds a Raspberry Pi 4 card.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::{project_root, stderr};
use edgeimg::dist::{pack, DistOptions};
use edgeimg::image::device::source::SourceTree;
use edgeimg::outputs::manifest::Manifest;

/// The installed edgeimg, run where the sources cannot be seen.
struct Installed {
    prefix: PathBuf,
    /// The empty folder the user works in (outside the repository).
    project: PathBuf,
    home: PathBuf,
    cache: PathBuf,
    /// `EDGEIMG_ALPINE_MIRROR`/`_KEYS` once `edgeimg mirror --env` said them.
    mirror: Vec<(String, String)>,
    /// When the test started: each step's log says how long it took, for CI's time budget.
    started: Instant,
}

/// `program` in a mount namespace where the source tree is an empty read-only tmpfs, run from
/// `cwd`, with only PATH from this environment.
fn without_sources(program: &Path, cwd: &Path) -> Command {
    let script = r#"mount -t tmpfs -o ro,size=1M edgeimg-sources-hidden "$SOURCES" && cd "$CWD" && exec "$@""#;
    let mut cmd = Command::new("unshare");
    cmd.args(["--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .arg(program)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SOURCES", project_root())
        .env("CWD", cwd);
    cmd
}

impl Installed {
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut cmd = without_sources(&self.prefix.join("bin/edgeimg"), &self.project);
        cmd.args(args)
            .env("HOME", &self.home)
            .env("EDGEIMG_CACHE", &self.cache);
        for (key, value) in &self.mirror {
            cmd.env(key, value);
        }
        for (key, value) in env {
            cmd.env(key, value);
        }
        let step = Instant::now();
        let out = cmd.output().expect("run unshare (util-linux)");
        eprintln!(
            "[{:.1}s, this step {:.1}s] $ edgeimg {}\n{}{}",
            self.started.elapsed().as_secs_f64(),
            step.elapsed().as_secs_f64(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        out
    }

    fn succeeds(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "edgeimg {args:?} failed");
        let err = stderr(&out);
        assert!(
            !err.contains("from source") && !err.contains("cargo"),
            "the installed edgeimg went near the sources or cargo:\n{err}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The user's cache (wheels, the mirror, packages), which lives outside the repository.
fn user_cache() -> PathBuf {
    let cache = edgeimg::packages::default_cache_dir().unwrap();
    assert!(
        !cache.starts_with(project_root()),
        "the cache {} is inside the sources this test hides",
        cache.display()
    );
    cache
}

fn install(work: &Path) -> PathBuf {
    let tree = SourceTree::of_this_build().expect("the tests run in the workspace");
    let report = pack(&DistOptions {
        edgeimg: PathBuf::from(env!("CARGO_BIN_EXE_edgeimg")),
        out_dir: work.join("dist"),
        tree,
    })
    .unwrap();
    let name = report
        .archive
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&format!("edgeimg-{}-", env!("CARGO_PKG_VERSION")))
            && name.ends_with("-linux.tar.gz"),
        "{name}"
    );
    let listed: Vec<&str> = report.files.iter().map(|(f, _)| f.as_str()).collect();
    for arch in ["x86_64", "aarch64"] {
        for file in [
            format!("{arch}-unknown-linux-musl/edge-init"),
            format!("{arch}-unknown-linux-musl/edge-runtime"),
            format!("{arch}-unknown-linux-gnu/edge-runtime"),
        ] {
            let path = format!("share/edgeimg/{}/{file}", env!("CARGO_PKG_VERSION"));
            assert!(listed.contains(&path.as_str()), "{path} not in {listed:?}");
        }
    }
    eprintln!(
        "dist: {} ({} bytes, {} files)",
        report.archive.display(),
        report.size,
        listed.len()
    );
    // The published checksum, then the archive's own list, checked by the standard tools.
    let dist = work.join("dist");
    let check = Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(&dist)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    let prefix = work.join("prefix");
    std::fs::create_dir_all(&prefix).unwrap();
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&report.archive)
        .arg("-C")
        .arg(&prefix)
        .arg("--strip-components=1")
        .output()
        .unwrap();
    assert!(untar.status.success(), "{}", stderr(&untar));
    let sums = Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(&prefix)
        .output()
        .unwrap();
    assert!(sums.status.success(), "{}", stderr(&sums));
    // The archive is only the way in; what matters is the installed prefix.
    std::fs::remove_dir_all(&dist).unwrap();
    prefix
}

fn manifest(project: &Path, name: &str) -> Manifest {
    Manifest::read(&project.join("images").join(name).join("manifest.json")).unwrap()
}

/// The image's binaries came from the installed folder, byte for byte.
fn assert_installed_binaries(prefix: &Path, manifest: &Manifest, arch: &str) {
    let record = manifest
        .device_binaries
        .as_ref()
        .expect("the manifest records the device binaries");
    assert_eq!(record.origin, "installed", "{record:?}");
    let share = prefix.join("share/edgeimg").join(env!("CARGO_PKG_VERSION"));
    for file in &record.files {
        assert!(
            file.from.starts_with(&format!("{arch}-unknown-linux-")),
            "{file:?}"
        );
        let installed = std::fs::read(share.join(&file.from)).unwrap();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&installed));
        assert_eq!(sha, file.sha256, "{}", file.from);
    }
}

/// Takes over the qemu-aarch64 boot of the suite (it was `boot_qemu.rs`'s): one boot serves
/// both the recipe's checks and the installed-edgeimg path.
#[test]
fn installed_edgeimg_scaffolds_builds_and_tests_without_its_sources() {
    let work = tempfile::Builder::new()
        .prefix("edgeimg-installed-")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    assert!(!work.path().starts_with(project_root()));
    let started = Instant::now();
    let prefix = install(work.path());
    eprintln!(
        "[{:.1}s] packed and installed",
        started.elapsed().as_secs_f64()
    );
    let project = work.path().join("my-appliance");
    let home = work.path().join("home");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let mut edgeimg = Installed {
        prefix: prefix.clone(),
        project: project.clone(),
        home,
        cache: user_cache(),
        mirror: Vec::new(),
        started,
    };

    // The sources really are out of reach in there.
    let listing = without_sources(Path::new("ls"), work.path())
        .arg("-A")
        .arg(project_root())
        .output()
        .unwrap();
    assert!(listing.status.success(), "{}", stderr(&listing));
    assert!(listing.stdout.is_empty(), "the sources are still visible");

    let doctor = edgeimg.succeeds(&["doctor"]);
    assert!(
        doctor.contains(&format!(
            "device binaries: {}",
            prefix
                .join("share/edgeimg")
                .join(env!("CARGO_PKG_VERSION"))
                .display()
        )),
        "{doctor}"
    );

    // EDGEIMG_DEVICE_BINARIES: `source` needs the tree, which is gone; a folder is taken as is.
    let share = prefix.join("share/edgeimg").join(env!("CARGO_PKG_VERSION"));
    let source = edgeimg.run_with(
        &["doctor"],
        &[("EDGEIMG_DEVICE_BINARIES", Path::new("source"))],
    );
    let said = String::from_utf8_lossy(&source.stdout);
    assert!(!source.status.success(), "{said}");
    assert!(
        said.contains("EDGEIMG_DEVICE_BINARIES=source, but the source tree this edgeimg was built from is gone"),
        "{said}"
    );
    let named = edgeimg.run_with(&["doctor"], &[("EDGEIMG_DEVICE_BINARIES", &share)]);
    let said = String::from_utf8_lossy(&named.stdout);
    assert!(named.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "device binaries: {} (EDGEIMG_DEVICE_BINARIES",
            share.display()
        )),
        "{said}"
    );

    // The offline mirror, the way a user behind a firewall gets it.
    let exports = edgeimg.succeeds(&["mirror", "--env"]);
    for line in exports.lines() {
        let (key, value) = line
            .strip_prefix("export ")
            .and_then(|l| l.split_once('='))
            .unwrap_or_else(|| panic!("not an export line: {line}"));
        edgeimg
            .mirror
            .push((key.to_string(), value.trim_matches('\'').to_string()));
    }
    assert_eq!(edgeimg.mirror.len(), 2, "{exports}");

    let said = edgeimg.succeeds(&["new", "mydevice", "--board", "qemu-aarch64"]);
    assert!(
        said.contains("next: edgeimg test recipes/mydevice.toml"),
        "{said}"
    );
    // `new` made the project's own API token and model-signing keys: the server reads its 0400
    // token file as its own account, every check below authenticates, and the update checks
    // sign with the new key.
    for secret in ["api-token", "models.key", "models.pub"] {
        assert!(
            project.join("recipes/secrets").join(secret).is_file(),
            "no {secret}"
        );
    }
    edgeimg.succeeds(&["build", "recipes/mydevice.toml"]);
    assert_installed_binaries(&prefix, &manifest(&project, "mydevice"), "aarch64");
    let sbom = std::fs::read_to_string(project.join("images/mydevice/mydevice.spdx.json")).unwrap();
    assert!(
        sbom.contains("aarch64-unknown-linux-musl/edge-init (installed beside edgeimg"),
        "{sbom}"
    );

    let junit = work.path().join("junit.xml");
    let tested = edgeimg.succeeds(&[
        "test",
        "recipes/mydevice.toml",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    for needed in [
        "ready in",
        "ONNX Runtime (max |diff|",
        "ok   device defaults",
        "ok   serial console",
        "powered off",
        " passed, 0 failed",
    ] {
        assert!(tested.contains(needed), "no {needed:?}:\n{tested}");
    }
    let load = tested
        .lines()
        .find(|l| l.contains("hostile requests among them"))
        .unwrap_or_else(|| panic!("no load check:\n{tested}"));
    assert!(
        load.contains("ok ")
            && load.contains("400 requests from 16 clients")
            && load.contains("wrong-token")
            && load.contains("slow-headers")
            && load.contains("0 errors"),
        "{load}"
    );
    for update in [
        "a new model uploaded under load",
        "a corrupt model is refused",
        "a model signed with another key is refused",
        "after a reboot it still serves the updated model",
        "QEMU killed mid-upload",
    ] {
        let line = tested
            .lines()
            .find(|l| l.contains(update))
            .unwrap_or_else(|| panic!("no {update:?} check:\n{tested}"));
        assert!(line.contains("ok "), "{line}");
    }
    let attack = tested
        .lines()
        .find(|l| l.contains("slow clients and floods of zeros"))
        .unwrap_or_else(|| panic!("no attack check:\n{tested}"));
    assert!(
        attack.contains("ok ") && attack.contains("32 slow clients") && attack.contains("x 408"),
        "{attack}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite") && !xml.contains("<failure"),
        "{xml}"
    );
    let console = String::from_utf8_lossy(
        &std::fs::read(project.join("images/mydevice/console.log")).unwrap(),
    )
    .into_owned();
    assert!(
        console.contains("edge-runtime listening on 0.0.0.0:8000 (engine onnxruntime,"),
        "{console}"
    );

    edgeimg.succeeds(&["new", "mypi", "--board", "rpi4"]);
    edgeimg.succeeds(&["build", "recipes/mypi.toml"]);
    let pi = manifest(&project, "mypi");
    assert_installed_binaries(&prefix, &pi, "aarch64");
    assert!(project.join("images/mypi/mypi.img").is_file());
    assert!(project.join("images/mypi/mypi.img.bmap").is_file());
    assert!(pi.disk.is_some());
}

/// An edgeimg without an installed folder (as `cargo install --path builder` leaves it) builds
/// the binaries in the tree it was built from while that is there, and says why; without the
/// tree it says how to get them.
#[test]
fn an_edgeimg_without_installed_binaries_says_where_its_binaries_come_from() {
    let work = tempfile::Builder::new()
        .prefix("edgeimg-bare-")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let edgeimg = bin.join("edgeimg");
    std::fs::copy(env!("CARGO_BIN_EXE_edgeimg"), &edgeimg).unwrap();
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let doctor = |hide: bool| {
        let mut cmd = match hide {
            true => without_sources(&edgeimg, work.path()),
            false => {
                let mut cmd = Command::new(&edgeimg);
                cmd.env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .current_dir(work.path());
                cmd
            }
        };
        cmd.arg("doctor")
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("XDG_DATA_HOME", &empty)
            .env("XDG_DATA_DIRS", &empty)
            .env("EDGEIMG_CACHE", user_cache())
            .output()
            .unwrap()
    };

    let with_tree = String::from_utf8_lossy(&doctor(false).stdout).into_owned();
    assert!(
        with_tree.contains(&format!(
            "device binaries: {} (built by cargo in the edgeimg source tree (no device binaries are installed for edgeimg {}",
            project_root().display(),
            env!("CARGO_PKG_VERSION")
        )) && with_tree.contains("the tree it was built from is still here"),
        "{with_tree}"
    );

    let out = doctor(true);
    let without = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{without}");
    assert!(
        without.contains("device binaries: none usable")
            && without.contains(&format!(
                "looked in {}",
                work.path()
                    .join("share/edgeimg")
                    .join(env!("CARGO_PKG_VERSION"))
                    .display()
            ))
            && without.contains("install edgeimg from its distribution archive"),
        "{without}"
    );
}
