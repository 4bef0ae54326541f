//! glibc, libstdc++ and libgcc_s for the image's arch, from Debian's cross packages
//! (`libc6-<arch>-cross`, `libstdc++6-<arch>-cross`, `libgcc-s1-<arch>-cross`), which install
//! the target's shared objects under `/usr/<triplet>/lib` on any Debian host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use edge_config::Arch;

/// The Debian package that installed a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub package: String,
    pub version: String,
}

impl Owner {
    /// The license of the three packages the engine takes files from.
    pub fn license(&self) -> &'static str {
        if self.package.starts_with("libc6-") {
            "LGPL-2.1-or-later"
        } else if self.package.starts_with("libstdc++6-") || self.package.starts_with("libgcc-s1-")
        {
            "GPL-3.0-or-later WITH GCC-exception-3.1"
        } else {
            "NOASSERTION"
        }
    }
}

/// The files the engine takes from the cross packages for `arch` (the loader, the C library,
/// libstdc++ and libgcc_s), each with the package that installs it.
pub fn cross_files(arch: Arch) -> Vec<(PathBuf, String)> {
    let dir = Path::new("/usr").join(arch.gnu_triplet()).join("lib");
    let deb = arch.debian();
    [
        (arch.glibc_loader().0, "libc6"),
        ("libc.so.6", "libc6"),
        ("libstdc++.so.6", "libstdc++6"),
        ("libgcc_s.so.1", "libgcc-s1"),
    ]
    .into_iter()
    .map(|(file, package)| (dir.join(file), format!("{package}-{deb}-cross")))
    .collect()
}

pub struct CrossLibs {
    dir: PathBuf,
    arch: Arch,
}

impl CrossLibs {
    pub fn locate(arch: Arch) -> Result<CrossLibs> {
        let dir = Path::new("/usr").join(arch.gnu_triplet()).join("lib");
        let libs = CrossLibs { dir, arch };
        if !libs.dir.join(arch.glibc_loader().0).is_file() {
            bail!(
                "engine = \"onnxruntime\" needs glibc for {} from Debian's cross packages, and {} has none; install them with `apt-get install {}` (`edgeimg doctor` lists what is missing)",
                arch.alpine(),
                libs.dir.display(),
                libs.packages().join(" ")
            );
        }
        Ok(libs)
    }

    fn packages(&self) -> Vec<String> {
        ["libc6", "libstdc++6", "libgcc-s1"]
            .iter()
            .map(|p| format!("{p}-{}-cross", self.arch.debian()))
            .collect()
    }

    /// The file the loader would load for `soname`.
    pub fn find(&self, soname: &str) -> Result<PathBuf> {
        let path = self.dir.join(soname);
        if !path.is_file() {
            bail!(
                "{soname} is needed by the ONNX Runtime engine but is not in {} (from {}); is one of those packages missing?",
                self.dir.display(),
                self.packages().join(", ")
            );
        }
        Ok(path)
    }

    /// Which installed Debian package, at which version, owns each of `paths`.
    pub fn owners<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a PathBuf>,
    ) -> Result<BTreeMap<PathBuf, Owner>> {
        let paths: Vec<&PathBuf> = paths.into_iter().collect();
        let searched = dpkg_query(Command::new("dpkg-query").arg("-S").args(&paths))?;
        let mut packages: BTreeMap<PathBuf, String> = BTreeMap::new();
        for line in searched.lines() {
            // `libc6-amd64-cross: /usr/x86_64-linux-gnu/lib/libc.so.6`
            if let Some((package, path)) = line.split_once(": ") {
                packages.insert(PathBuf::from(path.trim()), package.trim().to_string());
            }
        }
        let mut names: Vec<&String> = packages.values().collect();
        names.sort();
        names.dedup();
        let listed = dpkg_query(
            Command::new("dpkg-query")
                .args(["-W", "-f", "${Package} ${Version}\n"])
                .args(&names),
        )?;
        let versions: BTreeMap<&str, &str> =
            listed.lines().filter_map(|l| l.split_once(' ')).collect();
        let mut owners = BTreeMap::new();
        for (path, package) in packages {
            let version = versions
                .get(package.as_str())
                .with_context(|| format!("dpkg-query does not know package {package}"))?;
            owners.insert(
                path,
                Owner {
                    version: version.to_string(),
                    package,
                },
            );
        }
        Ok(owners)
    }
}

fn dpkg_query(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .context("cannot run dpkg-query to name the Debian packages behind the engine's glibc")?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
