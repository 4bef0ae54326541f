//! The device layer of the image: what turns an Alpine rootfs into an edgeimg appliance.
//! Our static binaries, the prepared model, the unprivileged server account, the kernel
//! modules to load and the device configuration that `edge-init` and `edge-runtime` read.

pub mod binaries;
mod model;
mod secrets;
mod system;
mod updates;
mod users;

pub use binaries::{
    device_binaries, edge_init, folder, glibc_runtime, source, DeviceBinaries, Origin, Provider,
    SELECT_ENV,
};
pub use model::{add_model, PreparedModel};

use anyhow::{Context, Result};
use edge_config::{
    DataPartition, DeviceConfig, InitConfig, ModelConfig, RuntimeConfig, DEVICE_CONFIG_PATH,
};

use crate::image::disk::DiskPlan;
use crate::image::kernel::{Loaded, ModuleSet};
use crate::image::onnxruntime::{EngineLibrary, ENGINE_DIR};
use crate::plan::Plan;
use crate::rootfs::{Meta, RootPath, RootfsTree};

pub const INIT_PATH: &str = "/sbin/edge-init";
pub const RUNTIME_PATH: &str = "/usr/bin/edge-runtime";

/// Add binaries, model, account and config to `tree`. Of `modules`, init loads those marked
/// loaded `AtBoot` by name and the rest by modalias or with what needs them; `data` is the partition init mounts at
/// /data (disk images); `disk`, a disk image's slots, whose size is settled here.
pub fn add_device_layer(
    plan: &Plan,
    tree: &mut RootfsTree,
    modules: &ModuleSet,
    binaries: &DeviceBinaries,
    data: Option<DataPartition>,
    disk: Option<&mut DiskPlan>,
) -> Result<Vec<PreparedModel>> {
    let t = plan.source_date_epoch;
    for (src, dest) in [
        (&binaries.init, INIT_PATH),
        (&binaries.runtime, RUNTIME_PATH),
    ] {
        let data = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
        tree.add_file(path(dest), data, Meta::root(0o755, t))?;
    }
    // The kernel runs /init from an initramfs; disk boots name init= on the command line.
    tree.add_symlink(path("/init"), INIT_PATH, Meta::root(0o777, t))?;
    let onnxruntime_library = add_engine_libraries(tree, &binaries.runtime_libraries, t)?;

    let account = users::add_server_account(tree, t)?;
    let secrets = secrets::add_secrets(&plan.runtime, tree, &account, t)?;
    let models = plan
        .models
        .iter()
        .map(|m| add_model(m, tree, t))
        .collect::<Result<Vec<_>>>()?;
    if let Some(data) = &data {
        // The root is read-only: the mount point must be in the image.
        tree.add_dir(path(&data.mountpoint), Meta::root(0o755, t))?;
    }
    let model_updates = plan
        .runtime
        .model_updates
        .as_ref()
        // The recipe refuses model updates when it serves several models: one golden check.
        .map(|u| updates::add_model_updates(plan, u, models.first(), tree, t))
        .transpose()?;
    let mut config = device_config(
        plan,
        modules,
        &account,
        &models,
        data,
        onnxruntime_library,
        secrets,
    );
    config.runtime.model_updates = model_updates;
    if let Some(disk) = disk {
        // Everything but the config is in: the slots' size follows from it.
        disk.settle_slot_size(plan, tree.file_bytes());
        config.system = Some(system::add_system(plan, disk, models.first(), tree, t)?);
    }
    tree.add_file(
        path(DEVICE_CONFIG_PATH),
        config.to_toml().into_bytes(),
        Meta::root(0o644, t),
    )?;
    Ok(models)
}

/// Puts the engine's libraries in [`ENGINE_DIR`]; returns libonnxruntime's path there.
fn add_engine_libraries(
    tree: &mut RootfsTree,
    libraries: &[EngineLibrary],
    mtime: u64,
) -> Result<Option<String>> {
    let mut onnxruntime = None;
    for library in libraries {
        let data = std::fs::read(&library.source)
            .with_context(|| format!("cannot read {}", library.source.display()))?;
        let dest = path(&format!("{ENGINE_DIR}/{}", library.file_name));
        if library.package == "onnxruntime" {
            onnxruntime = Some(dest.to_absolute());
        }
        tree.add_file(dest, data, Meta::root(0o755, mtime))?;
    }
    Ok(onnxruntime)
}

fn device_config(
    plan: &Plan,
    modules: &ModuleSet,
    account: &users::Account,
    models: &[PreparedModel],
    data: Option<DataPartition>,
    onnxruntime_library: Option<String>,
    secrets: secrets::Placed,
) -> DeviceConfig {
    let r = &plan.runtime;
    DeviceConfig {
        system: None,
        hostname: plan.hostname.clone(),
        init: InitConfig {
            // Device drivers are loaded by their devices' modaliases, not listed.
            modules: modules
                .modules
                .iter()
                .filter(|m| m.loaded == Loaded::AtBoot)
                .map(|m| m.path.to_absolute())
                .collect(),
            network: plan.network.clone(),
            data,
            server_uid: account.uid,
            server_gid: account.gid,
            server_path: RUNTIME_PATH.to_string(),
            server_args: Vec::new(),
            debug_shell: r.debug_shell,
        },
        runtime: RuntimeConfig {
            engine: r.engine,
            onnxruntime_library,
            listen: r.listen.clone(),
            threads: r.threads,
            max_body_bytes: r.max_body_bytes.map(|b| b as usize),
            max_concurrency: r.max_concurrency.unwrap_or(4),
            // Secrets are named by path; their files are the server's alone.
            bearer_token: None,
            bearer_token_file: secrets.bearer_token_file,
            start_plan: r.start_plan,
            limits: r.limits.clone(),
            tls: secrets.tls,
            model_updates: None,
            models: models
                .iter()
                .map(|m| ModelConfig {
                    name: m.name.clone(),
                    path: m.path_in_image.to_absolute(),
                    version: "1".into(),
                })
                .collect(),
        },
    }
}

fn path(p: &str) -> RootPath {
    RootPath::new(p).expect("constant paths are valid")
}
