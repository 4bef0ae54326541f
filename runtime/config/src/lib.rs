//! The device configuration: written by the builder into the image at [`DEVICE_CONFIG_PATH`],
//! read by `edge-init` (PID 1) and `edge-runtime` (the inference server).
//!
//! One schema shared by both sides, so the builder can never write a file the device cannot read.
//! Also [`Arch`], the one architecture type the builder, the QEMU harness and the tests share,
//! and [`cache_dir`], the one rule for where they keep what they download.

mod arch;
mod cache;

pub use arch::Arch;
pub use cache::{cache_dir, default_cache_dir, CACHE_ENV};

use serde::{Deserialize, Serialize};

/// Where the builder puts the device configuration inside the image.
pub const DEVICE_CONFIG_PATH: &str = "/etc/edgeimg/device.toml";

/// In a disk boot's initramfs: the modules it loads whatever the hardware (the root's file
/// system), one absolute path per line in load order; the drivers of the devices on the way to
/// the root are loaded by their modalias. A plain list, since that initramfs holds nothing else
/// to configure.
pub const BOOT_MODULES_PATH: &str = "/etc/edgeimg/boot-modules";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub hostname: String,
    pub init: InitConfig,
    pub runtime: RuntimeConfig,
}

/// What PID 1 does before and around the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// Kernel modules to load at every boot whatever the hardware (file systems, input
    /// handlers, the recipe's extras), in dependency order, as paths inside the image (e.g.
    /// `/lib/modules/6.18.56-0-virt/kernel/fs/ext4/ext4.ko`). Device drivers are not listed:
    /// init loads them by their devices' modaliases.
    #[serde(default)]
    pub modules: Vec<String>,
    #[serde(default)]
    pub network: NetworkConfig,
    /// A writable partition mounted at boot, found by label or partition UUID.
    #[serde(default)]
    pub data: Option<DataPartition>,
    /// The unprivileged account the server runs as.
    pub server_uid: u32,
    pub server_gid: u32,
    /// Path of the server binary inside the image.
    pub server_path: String,
    /// Extra arguments for the server (after `--config DEVICE_CONFIG_PATH`).
    #[serde(default)]
    pub server_args: Vec<String>,
    /// Give a debug shell on the console (off unless the recipe asks).
    #[serde(default)]
    pub debug_shell: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Run DHCP on the first Ethernet interface (or `interface`).
    #[serde(default = "yes")]
    pub dhcp: bool,
    #[serde(default)]
    pub interface: Option<String>,
}

// Written out: a derived Default would ignore the serde default and turn DHCP off.
impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            dhcp: true,
            interface: None,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPartition {
    /// File-system label, e.g. `edge-data`.
    pub label: Option<String>,
    /// GPT/MBR partition UUID, e.g. `6c2a0f13-03`.
    pub partuuid: Option<String>,
    pub fstype: String,
    pub mountpoint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// ort's alternative backend through `ort-tract`: pure Rust, fully static.
    Tract,
    /// The real ONNX Runtime, loaded at run time from `onnxruntime_library`.
    Onnxruntime,
}

/// What the inference server serves and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    pub engine: Engine,
    /// Path of libonnxruntime inside the image (engine = onnxruntime only).
    #[serde(default)]
    pub onnxruntime_library: Option<String>,
    /// Address the HTTP API binds, e.g. `0.0.0.0:8000`.
    pub listen: String,
    /// Intra-op threads per session; 0 means "one per CPU".
    #[serde(default)]
    pub threads: usize,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Requests served at once; more wait.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Optional bearer token required on every request but health checks.
    #[serde(default)]
    pub bearer_token: Option<String>,
    pub models: Vec<ModelConfig>,
}

/// `max_body_bytes` when the config does not say.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_concurrency() -> usize {
    4
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients use in `/v2/models/{name}`.
    pub name: String,
    /// Path of the (dims-frozen) ONNX file inside the image.
    pub path: String,
    /// Model version string reported by `/v2/models/{name}`.
    #[serde(default = "default_version")]
    pub version: String,
}

fn default_version() -> String {
    "1".to_string()
}

impl DeviceConfig {
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("DeviceConfig always serialises")
    }
}
