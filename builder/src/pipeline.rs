//! `edgeimg build`: run the pipeline for one plan and write its outputs.
//! Plan -> packages -> rootfs tree (+ recipe files) -> writers -> manifest.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use std::io::Write;

use std::collections::BTreeMap;

use crate::image::boot_dir::{BootDir, Placement};
use crate::image::device;
use crate::image::disk::{data_disk_partition, write_data_disk, write_disk_image, DiskPlan};
use crate::image::kernel::{prepare_kernel, BootKernel};
use crate::outputs::freshness::{inputs_digest, reusable_build, write_secrets_stamp};
use crate::outputs::manifest::{
    published_location, AlpineSource, BootRecord, DeviceBinariesRecord, EngineRecord, LeftOut,
    Manifest, ModelRecord, ModuleRecord, PackageRecord, RootfsSummary,
};
use crate::outputs::sbom::{write_sbom, SbomInputs};
use crate::packages::{self, InstalledSet, PackageRequest, Progress};
use crate::plan::{FileSource, Plan};
use crate::recipe::OutputKind;
use crate::rootfs::{Meta, RootfsTree};
use crate::stage::timed;
use crate::writers;
use crate::writers::atomic::AtomicFile;
use crate::writers::record::OutputRecord;

/// What a finished build produced.
#[derive(Debug)]
pub struct BuildReport {
    pub out_dir: PathBuf,
    pub manifest: Manifest,
}

pub struct BuildOptions {
    pub cache_dir: PathBuf,
    pub progress: Progress,
}

impl BuildOptions {
    pub fn from_env() -> Result<Self> {
        Ok(BuildOptions {
            cache_dir: packages::default_cache_dir()?,
            progress: Progress::auto(),
        })
    }
}

pub fn build(plan: &Plan, opts: &BuildOptions) -> Result<BuildReport> {
    fetch_models(plan, opts)?;
    let binaries = device::device_binaries(plan.arch, plan.runtime.engine, &opts.cache_dir)?;
    let digest = inputs_digest(plan, &binaries)?;
    let report = build_with(plan, opts, &binaries, digest)?;
    write_secrets_stamp(plan)?;
    Ok(report)
}

/// The recipe's downloaded models, fetched (or found in the cache) and verified, so every
/// later stage reads a local file.
pub fn fetch_models(plan: &Plan, opts: &BuildOptions) -> Result<()> {
    for model in &plan.models {
        if let Some(download) = &model.download {
            let path = download
                .ensure(&opts.cache_dir, &opts.progress)
                .with_context(|| format!("model {}", model.name))?;
            if path != model.path {
                bail!(
                    "model {}: fetched into {}, but the plan reads {} (EDGEIMG_CACHE changed between planning and building?)",
                    model.name,
                    path.display(),
                    model.path.display()
                );
            }
        }
    }
    Ok(())
}

/// Reuse the build in the plan's output folder when nothing it read has changed; the flag
/// says whether a build ran.
pub fn build_if_stale(plan: &Plan, opts: &BuildOptions) -> Result<(BuildReport, bool)> {
    fetch_models(plan, opts)?;
    let binaries = device::device_binaries(plan.arch, plan.runtime.engine, &opts.cache_dir)?;
    let digest = inputs_digest(plan, &binaries)?;
    if let Some(manifest) = reusable_build(plan, &digest) {
        let report = BuildReport {
            out_dir: plan.out_dir.clone(),
            manifest,
        };
        return Ok((report, false));
    }
    let report = build_with(plan, opts, &binaries, digest)?;
    write_secrets_stamp(plan)?;
    Ok((report, true))
}

fn build_with(
    plan: &Plan,
    opts: &BuildOptions,
    binaries: &device::DeviceBinaries,
    digest: String,
) -> Result<BuildReport> {
    if let Some(locked) = &plan.lock {
        locked.lock.check_plan(plan, &locked.path)?;
        locked
            .lock
            .check_engine_libraries(&binaries.runtime_libraries, &locked.path)?;
    }
    let mut tree = RootfsTree::new(plan.source_date_epoch);
    let installed = timed("packages", || install_packages(plan, opts, &mut tree))?;
    if let Some(locked) = &plan.lock {
        locked.lock.check_installed(&installed, &locked.path)?;
    }
    let kernel = timed("kernel and modules", || prepare_kernel(plan, &mut tree))?;
    let boot_dir = BootDir::take(&mut tree)?;
    let mut disk = DiskPlan::for_plan(plan);
    let data_disk = needs_data_disk(plan, disk.as_ref());
    let data = match &disk {
        Some(disk) => Some(disk.data_partition()),
        None if data_disk => Some(data_disk_partition()),
        None => None,
    };
    let models = timed("device layer", || {
        device::add_device_layer(
            plan,
            &mut tree,
            &kernel.modules,
            binaries,
            data,
            disk.as_mut(),
        )
    })?;
    add_recipe_files(plan, &mut tree)?;

    std::fs::create_dir_all(&plan.out_dir)
        .with_context(|| format!("cannot create output folder {}", plan.out_dir.display()))?;
    let mut outputs = Vec::new();
    let mut boot = None;
    if plan.outputs.contains(&OutputKind::RootfsTar) {
        let path = plan.out_dir.join(format!("{}.rootfs.tar", plan.name));
        timed("rootfs tar", || {
            writers::tar::write_rootfs_tar(&tree, &path)
        })?;
        outputs.push(OutputRecord::of_file("rootfs-tar", &path)?);
    }
    if plan.outputs.contains(&OutputKind::Initramfs) {
        let (mut record, files) = timed("kernel + initramfs", || {
            write_direct_boot(plan, &tree, &kernel, opts)
        })?;
        outputs.extend(files);
        if data_disk {
            let file = format!("{}.data.img", plan.name);
            let path = plan.out_dir.join(&file);
            write_data_disk(plan, &path)?;
            outputs.push(OutputRecord::of_file("data-disk", &path)?);
            record.data_disk = Some(file);
        }
        boot = Some(record);
    }
    let mut disk_record = None;
    let mut placed = BTreeMap::from([(kernel.packaged_path.clone(), Placement::BootedKernel)]);
    if let Some(disk) = &disk {
        let written = timed("disk image", || {
            write_disk_image(plan, disk, &tree, &boot_dir, &kernel, &opts.cache_dir)
        })?;
        outputs.extend(written.outputs);
        disk_record = Some(written.record);
        placed.extend(
            written
                .carried
                .into_iter()
                .map(|p| (p, Placement::BootPartition)),
        );
    }
    for m in &models {
        // The exact model the device serves, for host-side comparisons and inspection.
        let path = plan.out_dir.join(format!("{}.model.onnx", m.name));
        let mut out = AtomicFile::create(&path)?;
        out.file().write_all(&m.bytes)?;
        out.commit()?;
        outputs.push(OutputRecord::of_file("model", &path)?);
    }

    let mut manifest = manifest(plan, &tree, &installed, outputs);
    manifest.boot = boot;
    manifest.disk = disk_record;
    manifest.kernel_modules = kernel
        .modules
        .modules
        .iter()
        .map(ModuleRecord::of)
        .collect();
    manifest.warnings.extend(kernel.undriven_nodes());
    manifest.inputs_sha256 = Some(digest);
    manifest.left_out = installed
        .left_out
        .iter()
        .map(|l| {
            let why = plan.alpine.leave_out.get(&l.package).map(|r| r.reason());
            LeftOut::dependencies(&l.name_version, &l.dependencies, why.unwrap_or_default())
        })
        .chain(boot_dir.left_out(&placed))
        .collect();
    manifest.engine = Some(EngineRecord::new(
        plan.runtime.engine,
        &binaries.runtime_libraries,
    )?);
    manifest.device_binaries = Some(DeviceBinariesRecord::new(binaries)?);
    manifest.models = models
        .into_iter()
        .zip(&plan.models)
        .map(|(m, planned)| ModelRecord {
            name: m.name,
            source: match &planned.download {
                Some(d) if d.url.contains("://") => d.url.clone(),
                Some(d) => plan
                    .recipe_relative(Path::new(&d.url))
                    .display()
                    .to_string(),
                None => plan.recipe_relative(&planned.path).display().to_string(),
            },
            member: planned.download.as_ref().and_then(|d| d.member.clone()),
            download_sha256: planned.download.as_ref().map(|d| d.sha256.clone()),
            sha256: m.sha256,
            source_sha256: m.source_sha256,
            path_in_image: m.path_in_image.to_absolute(),
        })
        .collect();
    let sbom_path = plan.out_dir.join(format!("{}.spdx.json", plan.name));
    write_sbom(
        &manifest,
        &SbomInputs {
            binaries,
            kernel_image: &kernel.image,
            kernel_version: &kernel.version,
        },
        &sbom_path,
    )?;
    manifest
        .outputs
        .push(OutputRecord::of_file("sbom", &sbom_path)?);
    manifest.write(&plan.out_dir)?;
    Ok(BuildReport {
        out_dir: plan.out_dir.clone(),
        manifest,
    })
}

/// Model updates keep their versions on a data partition; a kernel + initramfs boot without a
/// disk image gets an ext4 disk of its own for them.
fn needs_data_disk(plan: &Plan, disk: Option<&DiskPlan>) -> bool {
    disk.is_none()
        && plan.runtime.model_updates.is_some()
        && plan.outputs.contains(&OutputKind::Initramfs)
}

/// Kernel + initramfs for QEMU's direct boot. The initramfs is the whole rootfs (whose /boot
/// is empty: the kernel is handed to QEMU separately).
fn write_direct_boot(
    plan: &Plan,
    tree: &RootfsTree,
    kernel: &BootKernel,
    opts: &BuildOptions,
) -> Result<(BootRecord, Vec<OutputRecord>)> {
    let kernel_file = format!("{}.kernel", plan.name);
    let initrd_file = format!("{}.initramfs.cpio.zst", plan.name);
    let kernel_path = plan.out_dir.join(&kernel_file);
    let mut out = AtomicFile::create(&kernel_path)?;
    out.file().write_all(&kernel.image)?;
    out.commit()?;

    let initrd_path = plan.out_dir.join(&initrd_file);
    writers::initramfs::write_initramfs(tree, &initrd_path, &opts.cache_dir, &opts.progress)?;
    Ok((
        BootRecord {
            kernel: kernel_file,
            initrd: Some(initrd_file),
            dtb: None,
            cmdline: plan.kernel.cmdline.clone(),
            kernel_version: kernel.version.clone(),
            modules: kernel
                .modules
                .names()
                .map(|m| m.as_str().to_string())
                .collect(),
            data_disk: None,
        },
        vec![
            OutputRecord::of_file("kernel", &kernel_path)?,
            OutputRecord::of_file("initramfs", &initrd_path)?,
        ],
    ))
}

/// The packages stage alone (also what `edgeimg lock` resolves).
pub fn install_packages(
    plan: &Plan,
    opts: &BuildOptions,
    tree: &mut RootfsTree,
) -> Result<InstalledSet> {
    let installed = packages::install(
        &package_request(plan, &opts.cache_dir),
        tree,
        &opts.progress,
    );
    match (&plan.lock, installed) {
        (Some(locked), Err(e)) => Err(e.context(format!(
            "the packages locked in {} cannot be installed from {}; if the mirror moved on, run `edgeimg lock` again",
            locked.path.display(),
            plan.alpine.mirror
        ))),
        (_, result) => result,
    }
}

fn package_request(plan: &Plan, cache_dir: &Path) -> PackageRequest {
    PackageRequest {
        arch: plan.arch.alpine().to_string(),
        repositories: plan.alpine.repo_specs(),
        extra_keys: plan.alpine.extra_keys.clone(),
        world: plan.alpine.world.clone(),
        leave_out: plan
            .alpine
            .leave_out
            .iter()
            .map(|(package, rule)| (package.clone(), rule.leave_out()))
            .collect(),
        cache_dir: cache_dir.to_path_buf(),
    }
}

fn add_recipe_files(plan: &Plan, tree: &mut RootfsTree) -> Result<()> {
    for file in &plan.files {
        let data = match &file.source {
            FileSource::Host(path) => std::fs::read(path)
                .with_context(|| format!("cannot read {} (recipe files.src)", path.display()))?,
            FileSource::Inline(text) => text.as_bytes().to_vec(),
        };
        tree.add_file(
            file.dest.clone(),
            data,
            Meta::root(file.mode, plan.source_date_epoch),
        )
        .with_context(|| format!("cannot add recipe file {}", file.dest))?;
    }
    Ok(())
}

fn manifest(
    plan: &Plan,
    tree: &RootfsTree,
    installed: &InstalledSet,
    outputs: Vec<OutputRecord>,
) -> Manifest {
    Manifest {
        name: plan.name.clone(),
        board: plan.board.name().to_string(),
        arch: plan.arch.alpine().to_string(),
        recipe: plan
            .recipe_path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        source_date_epoch: plan.source_date_epoch,
        alpine: AlpineSource {
            mirror: published_location(&plan.alpine.mirror, &plan.alpine.mirror),
            branch: plan.alpine.branch.clone(),
            repositories: plan.alpine.repositories.clone(),
        },
        packages: installed
            .packages
            .iter()
            .map(|p| PackageRecord {
                name: p.name.clone(),
                version: p.version.clone(),
                arch: p.arch.clone(),
                license: p.license.clone(),
                origin: p.origin.clone(),
                repository: published_location(&plan.alpine.mirror, &p.repository),
                device_repository: p.device_repository.clone(),
                checksum: p.checksum.clone(),
                apk_sha256: p.apk_sha256.clone(),
                size: p.size,
                installed_size: p.installed_size,
            })
            .collect(),
        rootfs: RootfsSummary {
            entries: tree.len(),
            file_bytes: tree.file_bytes(),
        },
        models: Vec::new(),
        engine: None,
        device_binaries: None,
        boot: None,
        disk: None,
        kernel_modules: Vec::new(),
        outputs,
        warnings: installed
            .warnings
            .iter()
            .cloned()
            .chain(plan.runtime.warnings())
            .collect(),
        inputs_sha256: None,
        left_out: Vec::new(),
    }
}
