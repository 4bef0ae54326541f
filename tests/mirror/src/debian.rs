//! The Raspberry Pi kernel and boot firmware, which Alpine's mirrors would supply but cannot be
//! reached: Debian's arm64 builds are downloaded with apt (into a private apt state under the
//! cache, so no root and no change to the host's apt configuration) and repackaged under
//! Alpine's names and file layout, saying so in their description.

use crate::package::{Entry, EntryKind, PackageContent, PackageMeta};
use crate::rootfs::{remove_dir_if_present, AlpineRoot};
use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

const KERNEL_META_PACKAGE: &str = "linux-image-arm64";
const FIRMWARE_PACKAGE: &str = "raspi-firmware";
const SOURCES: &str = "\
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main non-free-firmware
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main non-free-firmware
";

/// The two Debian packages the Pi packages are made from.
#[derive(Debug, Clone)]
pub struct DebianDebs {
    pub kernel: PathBuf,
    pub firmware: PathBuf,
}

/// Uses the `.deb`s already under `<cache>/debian/debs`, or downloads the current bookworm ones.
pub fn ensure_debs(cache: &Path) -> Result<DebianDebs> {
    let debs = cache.join("debian").join("debs");
    if let Some(found) = find_debs(&debs)? {
        return Ok(found);
    }
    fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let apt = Apt::new(&cache.join("debian").join("apt"))?;
    apt.run("apt-get", &["update", "-q"], None).context(
        "updating the private apt lists (needs Debian's mirror and debian-archive-keyring)",
    )?;
    let kernel = apt.kernel_package()?;
    apt.run(
        "apt-get",
        &[
            "download",
            "-q",
            FIRMWARE_PACKAGE,
            &format!("{kernel}:arm64"),
        ],
        Some(&debs),
    )
    .context("downloading the Raspberry Pi kernel and firmware from Debian")?;
    find_debs(&debs)?.with_context(|| {
        format!(
            "apt-get download left no usable .deb files in {}",
            debs.display()
        )
    })
}

fn find_debs(dir: &Path) -> Result<Option<DebianDebs>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".deb"))
        .collect();
    names.sort();
    let is_kernel = |n: &&String| {
        n.strip_prefix("linux-image-")
            .and_then(|rest| rest.split('_').next())
            .is_some_and(|pkg| {
                pkg.ends_with("-arm64") && pkg.starts_with(|c: char| c.is_ascii_digit())
            })
    };
    let kernel = names.iter().rfind(is_kernel);
    let firmware = names.iter().rfind(|n| n.starts_with("raspi-firmware_"));
    Ok(match (kernel, firmware) {
        (Some(k), Some(f)) => Some(DebianDebs {
            kernel: dir.join(k),
            firmware: dir.join(f),
        }),
        _ => None,
    })
}

/// apt-get/apt-cache with state, cache and sources under one private directory.
struct Apt {
    options: Vec<String>,
}

impl Apt {
    fn new(dir: &Path) -> Result<Apt> {
        for sub in ["lists/partial", "cache/archives/partial", "etc"] {
            fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let sources = dir.join("etc/sources.list");
        fs::write(&sources, SOURCES)?;
        let d = dir.display();
        let options = [
            format!("Dir::Etc::SourceList={}", sources.display()),
            "Dir::Etc::SourceParts=/nonexistent".into(),
            format!("Dir::State::Lists={d}/lists"),
            format!("Dir::Cache={d}/cache"),
            "APT::Architecture=arm64".into(),
            "APT::Architectures=arm64".into(),
            "Debug::NoLocking=1".into(),
            "APT::Sandbox::User=root".into(),
        ];
        Ok(Apt {
            options: options
                .iter()
                .flat_map(|o| ["-o".to_owned(), o.clone()])
                .collect(),
        })
    }

    fn run(&self, program: &str, args: &[&str], cwd: Option<&Path>) -> Result<String> {
        let mut cmd = Command::new(program);
        cmd.args(&self.options).args(args);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let output = cmd
            .output()
            .with_context(|| format!("cannot run {program}: this needs a Debian host"))?;
        if !output.status.success() {
            bail!(
                "{program} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The concrete kernel package the `linux-image-arm64` meta package points to now.
    fn kernel_package(&self) -> Result<String> {
        let info = self.run(
            "apt-cache",
            &["show", "--no-all-versions", KERNEL_META_PACKAGE],
            None,
        )?;
        info.lines()
            .find_map(|l| l.strip_prefix("Depends:"))
            .and_then(|deps| {
                deps.split(',')
                    .map(|d| d.trim())
                    .find(|d| d.starts_with("linux-image-"))
            })
            .and_then(|dep| dep.split_whitespace().next())
            .map(str::to_owned)
            .with_context(|| {
                format!("cannot find the kernel package {KERNEL_META_PACKAGE} depends on")
            })
    }
}

/// Debian's version (`[epoch:]upstream[-revision]`) as a valid apk version (`upstream-rN`):
/// the epoch and anything after the numeric part (`+ds`, `~rc1`) are dropped.
pub fn alpine_version(debian: &str) -> String {
    let without_epoch = debian.split_once(':').map_or(debian, |(_, v)| v);
    let (upstream, revision) = without_epoch
        .rsplit_once('-')
        .unwrap_or((without_epoch, "0"));
    let numeric: String = upstream
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let numeric = numeric.trim_matches('.');
    let numeric = if numeric.is_empty() { "0" } else { numeric };
    let rel: String = revision.chars().take_while(char::is_ascii_digit).collect();
    format!("{numeric}-r{}", if rel.is_empty() { "0" } else { &rel })
}

struct DebInfo {
    package: String,
    version: String,
    maintainer: String,
}

fn deb_info(deb: &Path) -> Result<DebInfo> {
    let output = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .args(["Package", "Version", "Maintainer"])
        .output()
        .context("cannot run dpkg-deb: this needs a Debian host")?;
    if !output.status.success() {
        bail!(
            "{} is not a valid .deb ({}); delete it to re-download",
            deb.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
            .map(|v| v.trim().to_owned())
            .with_context(|| format!("{} has no {name} field", deb.display()))
    };
    Ok(DebInfo {
        package: field("Package")?,
        version: field("Version")?,
        maintainer: field("Maintainer")?,
    })
}

fn extract_deb(deb: &Path, dest: &Path) -> Result<()> {
    remove_dir_if_present(dest)?;
    fs::create_dir_all(dest)?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(dest)
        .status()
        .context("cannot run dpkg-deb")?;
    if !status.success() {
        bail!(
            "dpkg-deb -x {} failed ({status}); delete the file to re-download",
            deb.display()
        );
    }
    Ok(())
}

/// Collects entries for `prefix` (a directory) and everything below it, in walk order.
struct EntryList {
    entries: Vec<Entry>,
    installed_size: u64,
}

impl EntryList {
    fn new() -> Self {
        EntryList {
            entries: Vec::new(),
            installed_size: 0,
        }
    }

    fn dirs(&mut self, path: &str) {
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if !self.entries.iter().any(|e| e.path == prefix) {
                self.push(&prefix, EntryKind::Dir, 0o755);
            }
        }
    }

    fn push(&mut self, path: &str, kind: EntryKind, mode: u32) {
        self.entries.push(Entry {
            path: path.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            expected_checksum: None,
        });
    }

    fn file(&mut self, path: &str, source: &Path, mode: u32) -> Result<()> {
        let size = fs::metadata(source)
            .with_context(|| format!("reading {}", source.display()))?
            .len();
        self.installed_size += size;
        self.push(path, EntryKind::File(source.to_owned()), mode);
        Ok(())
    }

    /// Adds the tree at `source` under `dest`, sorted, with Debian's modes normalised.
    fn tree(&mut self, dest: &str, source: &Path) -> Result<()> {
        self.dirs(dest);
        for item in walkdir::WalkDir::new(source)
            .min_depth(1)
            .sort_by_file_name()
        {
            let item = item.with_context(|| format!("walking {}", source.display()))?;
            let rel = item
                .path()
                .strip_prefix(source)?
                .to_string_lossy()
                .into_owned();
            let path = format!("{dest}/{rel}");
            let kind = item.file_type();
            if kind.is_dir() {
                self.push(&path, EntryKind::Dir, 0o755);
            } else if kind.is_symlink() {
                let target = fs::read_link(item.path())?.to_string_lossy().into_owned();
                self.push(&path, EntryKind::Symlink(target), 0o777);
            } else {
                self.file(&path, item.path(), 0o644)?;
            }
        }
        Ok(())
    }
}

/// `linux-rpi`: Debian's arm64 kernel in Alpine's layout (`/boot/vmlinuz-rpi`,
/// `/boot/dtbs-rpi/broadcom/*.dtb`, `/lib/modules/<release>/` with a fresh `modules.dep`).
pub fn linux_rpi(deb: &Path, work: &Path, depmod_host: &AlpineRoot) -> Result<PackageContent> {
    let info = deb_info(deb)?;
    let tree = work.join("linux-rpi");
    extract_deb(deb, &tree)?;
    let release = info
        .package
        .strip_prefix("linux-image-")
        .with_context(|| format!("{} is not a linux-image package", info.package))?
        .to_owned();
    let boot = tree.join("boot");
    let image = unpacked_image(
        &boot.join(format!("vmlinuz-{release}")),
        &work.join("vmlinuz-rpi"),
    )?;
    let modules = tree.join("lib/modules").join(&release);
    run_depmod(depmod_host, &tree, &release)?;
    let release_file = work.join("kernel.release");
    fs::write(&release_file, format!("{release}\n"))?;

    let mut list = EntryList::new();
    list.dirs("boot");
    list.file("boot/vmlinuz-rpi", &image, 0o755)?;
    for name in [format!("config-{release}"), format!("System.map-{release}")] {
        if boot.join(&name).is_file() {
            list.file(&format!("boot/{name}"), &boot.join(&name), 0o644)?;
        }
    }
    let dtbs = tree.join(format!("usr/lib/linux-image-{release}/broadcom"));
    if !dtbs.is_dir() {
        bail!(
            "{} has no Raspberry Pi device trees (usr/lib/linux-image-{release}/broadcom)",
            deb.display()
        );
    }
    list.tree("boot/dtbs-rpi/broadcom", &dtbs)?;
    list.tree(&format!("lib/modules/{release}"), &modules)?;
    list.dirs("usr/share/kernel/rpi");
    list.file("usr/share/kernel/rpi/kernel.release", &release_file, 0o644)?;

    let meta = PackageMeta {
        name: "linux-rpi".into(),
        version: alpine_version(&info.version),
        arch: "aarch64".into(),
        description: format!(
            "Linux kernel for Raspberry Pi 3/4/Zero 2 W (repackaged from Debian {} {})",
            info.package, info.version
        ),
        url: "https://www.kernel.org".into(),
        license: "GPL-2.0-only".into(),
        origin: "linux-rpi".into(),
        maintainer: Some(info.maintainer),
        build_time: mtime(&boot.join(format!("vmlinuz-{release}")))?,
        depends: vec!["initramfs-generator".into()],
        installed_size: list.installed_size,
        ..Default::default()
    };
    Ok(PackageContent {
        meta,
        scripts: Vec::new(),
        entries: list.entries,
    })
}

/// `raspberrypi-bootloader`: the GPU firmware the Pi boots from, under `/boot/`.
pub fn raspberrypi_bootloader(deb: &Path, work: &Path) -> Result<PackageContent> {
    let info = deb_info(deb)?;
    let tree = work.join("raspi-firmware");
    extract_deb(deb, &tree)?;
    let firmware = tree.join("usr/lib/raspi-firmware");
    let mut names: Vec<String> = fs::read_dir(&firmware)
        .with_context(|| format!("{} has no usr/lib/raspi-firmware", deb.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n == "bootcode.bin" || n.ends_with(".elf") || n.ends_with(".dat"))
        .collect();
    names.sort();
    if !names.iter().any(|n| n == "start4.elf") || !names.iter().any(|n| n == "bootcode.bin") {
        bail!(
            "{} lacks bootcode.bin/start4.elf; is it Debian's raspi-firmware?",
            deb.display()
        );
    }
    let mut list = EntryList::new();
    list.dirs("boot");
    for name in &names {
        list.file(&format!("boot/{name}"), &firmware.join(name), 0o644)?;
    }
    let meta = PackageMeta {
        name: "raspberrypi-bootloader".into(),
        version: alpine_version(&info.version),
        arch: "aarch64".into(),
        description: format!(
            "Bootloader files for the Raspberry Pi (repackaged from Debian {} {})",
            info.package, info.version
        ),
        url: "https://github.com/raspberrypi/firmware".into(),
        license: "custom".into(),
        origin: "raspberrypi-bootloader".into(),
        maintainer: Some(info.maintainer),
        build_time: mtime(&firmware.join("start4.elf"))?,
        installed_size: list.installed_size,
        ..Default::default()
    };
    Ok(PackageContent {
        meta,
        scripts: Vec::new(),
        entries: list.entries,
    })
}

/// Debian may ship the arm64 `Image` gzipped; the Pi firmware and QEMU need it raw.
fn unpacked_image(vmlinuz: &Path, dest: &Path) -> Result<PathBuf> {
    let bytes = fs::read(vmlinuz).with_context(|| format!("reading {}", vmlinuz.display()))?;
    let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .with_context(|| format!("decompressing {}", vmlinuz.display()))?;
        out
    } else {
        bytes
    };
    // The arm64 boot protocol puts "ARM\x64" at offset 56 of the Image header.
    if raw.get(56..60) != Some(b"ARM\x64".as_slice()) {
        bail!("{} is not an arm64 kernel Image", vmlinuz.display());
    }
    fs::write(dest, raw)?;
    Ok(dest.to_owned())
}

/// Runs kmod's depmod from the host-architecture Alpine root through its musl loader, so the
/// host needs no kmod of its own.
fn run_depmod(host_root: &AlpineRoot, base: &Path, release: &str) -> Result<()> {
    let root = &host_root.dir;
    let output = Command::new(root.join(host_root.arch.musl_loader()))
        .arg("--library-path")
        .arg(format!(
            "{}:{}",
            root.join("lib").display(),
            root.join("usr/lib").display()
        ))
        .arg(root.join("sbin/depmod"))
        .arg("-b")
        .arg(base)
        .arg(release)
        .output()
        .context("running Alpine's depmod through its musl loader")?;
    if !output.status.success() {
        bail!(
            "depmod for {release} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if !base
        .join("lib/modules")
        .join(release)
        .join("modules.dep")
        .is_file()
    {
        bail!("depmod for {release} wrote no modules.dep");
    }
    Ok(())
}

fn mtime(path: &Path) -> Result<u64> {
    let modified = fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::alpine_version;

    #[test]
    fn debian_versions_become_apk_versions() {
        assert_eq!(alpine_version("6.1.192-2"), "6.1.192-r2");
        assert_eq!(alpine_version("1.20220830+ds-1"), "1.20220830-r1");
        assert_eq!(alpine_version("1:2.3~rc1-4+deb12u1"), "2.3-r4");
        assert_eq!(alpine_version("5"), "5-r0");
    }
}
