//! Writing `RECIPE.lock` from what a build installed, and holding a locked build to it: the
//! recipe still asks for what was locked, this machine has the locked engine libraries, and the
//! mirror supplied exactly the locked packages. The format is [`crate::plan::lockfile`].

use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::image::onnxruntime::EngineLibrary;
use crate::packages::InstalledSet;
use crate::plan::lockfile::{
    LockedAlpine, LockedEngineLibrary, LockedModel, LockedPackage, LockedPackageRef, Lockfile,
    FORMAT,
};
use crate::plan::Plan;
use crate::writers::atomic::AtomicFile;

impl Lockfile {
    /// The lock for what `plan` just installed, with the engine libraries the build adds.
    pub fn from_install(
        plan: &Plan,
        installed: &InstalledSet,
        engine_libraries: &[EngineLibrary],
    ) -> Result<Lockfile> {
        let kernel = installed
            .packages
            .iter()
            .find(|p| p.name == plan.kernel.package)
            .with_context(|| {
                format!(
                    "the kernel package {} was not installed",
                    plan.kernel.package
                )
            })?;
        Ok(Lockfile {
            format: FORMAT,
            source_date_epoch: plan.source_date_epoch,
            alpine: LockedAlpine {
                branch: plan.alpine.branch.clone(),
                repositories: plan.alpine.repositories.clone(),
                key_fingerprints: key_fingerprints(plan)?,
            },
            kernel: LockedPackageRef {
                name: kernel.name.clone(),
                version: kernel.version.clone(),
            },
            model_sha256: None,
            models: locked_models(plan)?,
            packages: installed
                .packages
                .iter()
                .map(|p| LockedPackage {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    arch: p.arch.clone(),
                    checksum: p.checksum.clone(),
                    apk_sha256: p.apk_sha256.clone(),
                })
                .collect(),
            engine_libraries: lock_engine_libraries(engine_libraries)?,
        })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut out = AtomicFile::create(path)?;
        let text = format!(
            "# Written by `edgeimg lock`; builds of the recipe install exactly this.\n{}",
            toml::to_string_pretty(self)?
        );
        std::io::Write::write_all(out.file(), text.as_bytes())?;
        out.commit()
    }

    /// Before building: the recipe still asks for what was locked.
    pub fn check_plan(&self, plan: &Plan, lock: &Path) -> Result<()> {
        let again = || {
            format!(
                "run `edgeimg lock {}` to lock the new state",
                plan.recipe_path.display()
            )
        };
        if self.alpine.branch != plan.alpine.branch
            || self.alpine.repositories != plan.alpine.repositories
        {
            bail!(
                "{} locks Alpine {} {:?}, the recipe asks for {} {:?}; {}",
                lock.display(),
                self.alpine.branch,
                self.alpine.repositories,
                plan.alpine.branch,
                plan.alpine.repositories,
                again()
            );
        }
        if self.alpine.key_fingerprints != key_fingerprints(plan)? {
            bail!(
                "the keys trusted for the mirror differ from those in {}; {}",
                lock.display(),
                again()
            );
        }
        let now = locked_models(plan)?;
        let now_sha256s: Vec<&str> = now.iter().map(|m| m.sha256.as_str()).collect();
        if self.model_sha256s() != now_sha256s {
            bail!(
                "the models differ from those in {} (locked sha256 {:?}, now {:?}); {}",
                lock.display(),
                self.model_sha256s(),
                now_sha256s,
                again()
            );
        }
        Ok(())
    }

    /// Before building: the engine's libraries on this machine are the locked ones.
    pub fn check_engine_libraries(&self, libraries: &[EngineLibrary], lock: &Path) -> Result<()> {
        let found = lock_engine_libraries(libraries)?;
        if found == self.engine_libraries {
            return Ok(());
        }
        let differs = |a: &[LockedEngineLibrary], b: &[LockedEngineLibrary]| {
            a.iter()
                .filter(|l| !b.contains(l))
                .map(|l| {
                    format!(
                        "{} ({} {}, sha256 {})",
                        l.file, l.package, l.version, l.sha256
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        bail!(
            "the ONNX Runtime engine's libraries differ from {}: locked [{}], this machine has [{}]; install the locked versions (the onnxruntime wheel, Debian's *-cross packages) or run `edgeimg lock` again",
            lock.display(),
            differs(&self.engine_libraries, &found),
            differs(&found, &self.engine_libraries)
        );
    }

    /// After installing: exactly the locked packages, byte for byte.
    pub fn check_installed(&self, installed: &InstalledSet, lock: &Path) -> Result<()> {
        for want in &self.packages {
            let Some(got) = installed.packages.iter().find(|p| p.name == want.name) else {
                bail!(
                    "{} locks {}-{}, which this build did not install",
                    lock.display(),
                    want.name,
                    want.version
                );
            };
            if got.version != want.version
                || got.checksum != want.checksum
                || got.apk_sha256 != want.apk_sha256
            {
                bail!(
                    "the mirror's {}-{} (sha256 {}) is not the locked {}-{} (sha256 {}) in {}: the package was rebuilt or replaced; if that is expected, run `edgeimg lock` again",
                    got.name, got.version, got.apk_sha256, want.name, want.version, want.apk_sha256, lock.display()
                );
            }
        }
        if let Some(extra) = installed
            .packages
            .iter()
            .find(|p| !self.packages.iter().any(|l| l.name == p.name))
        {
            bail!(
                "this build installed {}-{}, which {} does not lock; run `edgeimg lock` again",
                extra.name,
                extra.version,
                lock.display()
            );
        }
        Ok(())
    }
}

fn lock_engine_libraries(libraries: &[EngineLibrary]) -> Result<Vec<LockedEngineLibrary>> {
    libraries
        .iter()
        .map(|l| {
            Ok(LockedEngineLibrary {
                file: l.file_name.clone(),
                package: l.package.clone(),
                version: l.version.clone(),
                sha256: sha256_file(&l.source)?,
            })
        })
        .collect()
}

fn key_fingerprints(plan: &Plan) -> Result<Vec<String>> {
    plan.alpine
        .extra_keys
        .iter()
        .map(|k| sha256_file(k).with_context(|| format!("trusted key {}", k.display())))
        .collect()
}

fn locked_models(plan: &Plan) -> Result<Vec<LockedModel>> {
    plan.models
        .iter()
        .map(|m| {
            Ok(LockedModel {
                name: m.name.clone(),
                sha256: sha256_file(&m.path)?,
            })
        })
        .collect()
}

fn sha256_file(path: &Path) -> Result<String> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(data)))
}
