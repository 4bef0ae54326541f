//! The device configuration: written by the builder into the image at [`DEVICE_CONFIG_PATH`],
//! read by `edge-init` (PID 1) and `edge-runtime` (the inference server).
//!
//! One schema shared by both sides, so the builder can never write a file the device cannot read.
//! Also [`Arch`], the one architecture type the builder, the QEMU harness and the tests share,
//! and [`cache_dir`], the one rule for where they keep what they download.

mod arch;
#[cfg(feature = "artifact")]
pub mod artifact;
mod cache;
#[cfg(feature = "signing")]
pub mod signing;
pub mod system;

pub use arch::Arch;
pub use cache::{cache_dir, default_cache_dir, CACHE_ENV};

use serde::{Deserialize, Serialize};

/// Where the builder puts the device configuration inside the image.
pub const DEVICE_CONFIG_PATH: &str = "/etc/edgeimg/device.toml";

/// The console line edge-runtime prints when a model's optimised plan takes over from the quick
/// plan it started on: `EDGEIMG-OPTIMISED model=<name> ms=<build ms> ms_since_boot=<n>`.
pub const OPTIMISED_MARKER: &str = "EDGEIMG-OPTIMISED";

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
    /// A/B slots and system updates: disk images only.
    #[serde(default)]
    pub system: Option<system::SystemConfig>,
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

impl Engine {
    /// The name a recipe and the device config give it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Tract => "tract",
            Engine::Onnxruntime => "onnxruntime",
        }
    }
}

/// How much work a model's graph gets before its session serves; `start_plan` picks the one
/// the server opens its port on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// Typed but not optimised. On the host tract builds cls's in 13 ms against 75 ms for the
    /// optimised plan, and runs it in 17 ms against 1.7 ms: a plan to serve while the
    /// optimised one is built (the default start: ready sooner, the first answers slower).
    #[default]
    Quick,
    /// Decluttered and optimised (ONNX Runtime's level 3). As the start plan: ready later,
    /// every answer from it.
    #[serde(alias = "optimized")]
    Optimised,
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
    /// Largest request body accepted, in bytes. Without it the server derives the limit from
    /// its models' largest valid request (edge-runtime's `limits`).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Requests the engine runs at once; more wait, once their body has arrived.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Optional bearer token required on every request but health checks. Prefer
    /// `bearer_token_file`: this file is world-readable.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// A file holding the bearer token (readable by the server's account only).
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// The plan the models serve on at start (a system on trial starts optimised anyway).
    #[serde(default)]
    pub start_plan: Plan,
    // Tables after plain values, as TOML writes them.
    /// Timeouts and caps on what clients may hold.
    #[serde(default)]
    pub limits: Limits,
    /// Serve the API over TLS with this certificate and key.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// The model repository API (`/v2/repository/...`): new versions of the models uploaded,
    /// checked and swapped in while serving. Off (`None`) unless the recipe enables it.
    #[serde(default)]
    pub model_updates: Option<ModelUpdates>,
    pub models: Vec<ModelConfig>,
}

/// Where uploaded model versions live and what a new version must pass before it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelUpdates {
    /// Folder of `<name>/<version>/model.onnx` and `<name>/current` (on the data partition).
    #[serde(default = "default_model_store")]
    pub store: String,
    /// Largest model upload accepted, in bytes.
    #[serde(default = "default_max_model_bytes")]
    pub max_model_bytes: u64,
    /// An ed25519 public key (base64 of its 32 bytes, as `edgeimg keygen` writes it): once set,
    /// every upload must carry a signature it verifies.
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// Inputs a new version runs before it serves, and the outputs it must give. Without it,
    /// the check is one inference on inputs of the declared shapes.
    #[serde(default)]
    pub golden: Option<GoldenCheck>,
}

/// Where `edge-init` and the server expect uploaded models.
pub const DEFAULT_MODEL_STORE: &str = "/data/models";

/// `max_model_bytes` unless the recipe sets it: room for the mobile-sized models an edge
/// device serves, small enough that an upload cannot fill a card's data partition unnoticed.
pub const DEFAULT_MAX_MODEL_BYTES: u64 = 256 << 20;

fn default_model_store() -> String {
    DEFAULT_MODEL_STORE.to_string()
}

fn default_max_model_bytes() -> u64 {
    DEFAULT_MAX_MODEL_BYTES
}

/// The golden inference: named tensors in, optionally the outputs expected within `tolerance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenCheck {
    pub tolerance: f64,
    pub inputs: Vec<GoldenTensor>,
    #[serde(default)]
    pub expect: Vec<GoldenTensor>,
}

/// A tensor as flat row-major numbers (converted to the model's element type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenTensor {
    pub name: String,
    pub data: Vec<f64>,
}

/// How long a client may take and how much it may hold. Each has a safe default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// From a connection's opening (on a kept-alive one, from the next request's first byte)
    /// to the end of the request's headers, in milliseconds; then 408.
    pub header_timeout_ms: u64,
    /// How long a body may take beyond what its size needs at `body_min_rate`, in
    /// milliseconds; then 408.
    pub body_timeout_ms: u64,
    /// Slowest body accepted, in bytes per second (after `body_timeout_ms` of grace).
    pub body_min_rate: u64,
    /// An idle kept-alive connection is closed after this, in milliseconds.
    pub keep_alive_timeout_ms: u64,
    /// Connections held at once; more are answered 503 and closed. Each holds at most one
    /// request, so this also bounds the requests decoding or waiting for the engine.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            body_min_rate: 8 << 10,
            keep_alive_timeout_ms: 30_000,
            max_connections: 128,
        }
    }
}

/// PEM files inside the image: the certificate chain (leaf first) and its private key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
}

/// `max_body_bytes` for a model whose inputs have dimensions of any size, where no largest
/// request can be derived.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

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

/// Why [`DeviceConfig::from_toml`] refused a text (readers name it without depending on toml).
pub type TomlError = toml::de::Error;

impl DeviceConfig {
    pub fn from_toml(text: &str) -> Result<Self, TomlError> {
        toml::from_str(text)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("DeviceConfig always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_with_every_section_round_trips() {
        let minimal = "hostname = \"edge\"\n[init]\nserver_uid = 1000\nserver_gid = 1000\nserver_path = \"/usr/bin/edge-runtime\"\n[runtime]\nengine = \"tract\"\nlisten = \"0.0.0.0:8000\"\nmodels = []\n";
        let mut config = DeviceConfig::from_toml(minimal).unwrap();
        assert_eq!(config.runtime.limits, Limits::default());
        assert_eq!(config.runtime.max_body_bytes, None);
        assert_eq!(config.runtime.start_plan, Plan::Quick);
        let runtime = &mut config.runtime;
        runtime.start_plan = Plan::Optimised;
        runtime.bearer_token_file = Some("/etc/edgeimg/secrets/bearer-token".into());
        runtime.limits.header_timeout_ms = 2500;
        runtime.tls = Some(TlsFiles {
            cert: "/etc/edgeimg/tls-cert.pem".into(),
            key: "/etc/edgeimg/secrets/tls-key.pem".into(),
        });
        runtime.models.push(ModelConfig {
            name: "m".into(),
            path: "/m.onnx".into(),
            version: "1".into(),
        });
        runtime.model_updates = Some(ModelUpdates {
            store: DEFAULT_MODEL_STORE.into(),
            max_model_bytes: 1 << 20,
            public_key_file: Some("/etc/edgeimg/model-key.pub".into()),
            golden: Some(GoldenCheck {
                tolerance: 1e-4,
                inputs: vec![GoldenTensor {
                    name: "x".into(),
                    data: vec![0.5, 1.0],
                }],
                expect: Vec::new(),
            }),
        });
        let text = config.to_toml();
        assert_eq!(DeviceConfig::from_toml(&text).unwrap(), config, "{text}");
        // Limits left out are the defaults.
        let partial = text.replace("header_timeout_ms = 2500\n", "");
        let read = DeviceConfig::from_toml(&partial).unwrap();
        assert_eq!(read.runtime.limits, Limits::default(), "{partial}");
        // Either spelling of the optimised start; nothing else.
        let american = text.replace("start_plan = \"optimised\"", "start_plan = \"optimized\"");
        let read = DeviceConfig::from_toml(&american).unwrap();
        assert_eq!(read.runtime.start_plan, Plan::Optimised, "{american}");
        let fast = text.replace("start_plan = \"optimised\"", "start_plan = \"fast\"");
        let error = DeviceConfig::from_toml(&fast).unwrap_err().to_string();
        assert!(
            error.contains("quick") && error.contains("optimised"),
            "{error}"
        );
    }
}
