//! The recipe's TOML schema. Every section rejects unknown keys; defaults come from the board.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

pub use super::attack::AttackCheck;
pub use super::model::ModelSection;
pub use super::repository::ThirdPartyRepository;
pub use super::system_updates::{
    KillPoint, SystemUpdateCheck, SystemUpdateVerdict, SystemUpdatesSection, Tamper,
};
pub use super::update::{RebootCheck, UpdateCheck, UpdateVerdict};
use super::{Board, LoadedRecipe, RecipeError};
pub use edge_config::Engine;

/// Alpine's CDN: the mirror used unless the recipe, `--mirror` or `EDGEIMG_ALPINE_MIRROR` say otherwise.
pub const DEFAULT_MIRROR: &str = "https://dl-cdn.alpinelinux.org/alpine";
pub const DEFAULT_BRANCH: &str = "v3.23";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub image: ImageSection,
    #[serde(default)]
    pub alpine: AlpineSection,
    #[serde(default)]
    pub kernel: KernelSection,
    /// `[model]` or `[[model]]`: every model the image serves.
    #[serde(
        default,
        rename = "model",
        deserialize_with = "super::model::one_or_many"
    )]
    pub models: Vec<ModelSection>,
    #[serde(default)]
    pub runtime: RuntimeSection,
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// A/B updates of the whole image (disk images only).
    pub system_updates: Option<SystemUpdatesSection>,
    #[serde(default, rename = "test")]
    pub tests: Vec<TestCase>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    /// Image name: output folder and file names (`images/<name>/`).
    pub name: Spanned<String>,
    pub board: Board,
    /// Hostname on the device (default: the image name).
    pub hostname: Option<String>,
    /// What to write; the board decides when absent.
    pub outputs: Option<Vec<OutputKind>>,
    /// Total disk image size for disk outputs, e.g. "256MiB" (default: just big enough).
    pub size: Option<Spanned<String>>,
    /// Size of the writable ext4 data partition on disk images, e.g. "64MiB".
    pub data_size: Option<Spanned<String>>,
    /// The image's version, reported by the device and carried by its update (default "1").
    pub version: Option<Spanned<String>>,
    /// Each of the disk image's two root slots, e.g. "128MiB" (default: twice the root, at
    /// least 64 MiB): an update's root must fit.
    pub slot_size: Option<Spanned<String>>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum OutputKind {
    /// The root file system as a tar archive (owners root:root, whoever built it).
    RootfsTar,
    /// Kernel + cpio initramfs for direct boot (QEMU `-kernel`/`-initrd`).
    Initramfs,
    /// A raw, partitioned disk image (plus its `.bmap`).
    Disk,
    /// The disk image converted to qcow2.
    Qcow2,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlpineSection {
    #[serde(default = "default_branch")]
    pub branch: String,
    /// An https URL or a local folder laid out like an Alpine mirror.
    pub mirror: Option<Spanned<String>>,
    #[serde(default = "default_repositories")]
    pub repositories: Vec<String>,
    /// Extra packages (Alpine names or `so:`/`cmd:` provides, optionally with a version).
    #[serde(default)]
    pub packages: Vec<Spanned<String>>,
    /// Public keys (`*.rsa.pub`) to trust besides Alpine's own.
    #[serde(default)]
    pub keys: Vec<Spanned<PathBuf>>,
    /// `[[alpine.repository]]`: third-party repositories, each at its own url with its key.
    #[serde(default, rename = "repository")]
    pub third_party: Vec<ThirdPartyRepository>,
    /// The mirror the image's `/etc/apk/repositories` names for the branch repositories
    /// (default: `mirror` when it is an https URL, else Alpine's CDN; never a host folder).
    pub device_mirror: Option<Spanned<String>>,
}

impl Default for AlpineSection {
    fn default() -> Self {
        AlpineSection {
            branch: default_branch(),
            mirror: None,
            repositories: default_repositories(),
            packages: Vec::new(),
            keys: Vec::new(),
            third_party: Vec::new(),
            device_mirror: None,
        }
    }
}

fn default_branch() -> String {
    DEFAULT_BRANCH.into()
}

fn default_repositories() -> Vec<String> {
    vec!["main".into()]
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSection {
    /// Kernel package (default from the board: `linux-virt`, `linux-rpi`).
    pub package: Option<String>,
    /// Extra kernel command-line arguments, appended to the board's.
    pub cmdline: Option<String>,
    /// Extra modules to include and load at boot (with their `modules.dep` closure).
    #[serde(default)]
    pub modules: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    #[serde(default = "default_engine")]
    pub engine: Engine,
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
    /// Intra-op threads; 0 = one per CPU.
    #[serde(default)]
    pub threads: usize,
    /// Requests the engine runs at once; more wait once their body has arrived.
    pub max_concurrency: Option<usize>,
    /// Largest request body, e.g. "16MiB" (default: derived from the model by the server).
    pub max_body: Option<Spanned<String>>,
    /// Connections held at once; more are answered 503.
    pub max_connections: Option<Spanned<usize>>,
    /// Seconds a request's headers may take to arrive (408 after).
    pub header_timeout_secs: Option<Spanned<f64>>,
    /// Seconds a body may take beyond its size at `body_min_rate` (408 after).
    pub body_timeout_secs: Option<Spanned<f64>>,
    /// Slowest body accepted, per second, e.g. "8KiB".
    pub body_min_rate: Option<Spanned<String>>,
    /// Seconds an idle kept-alive connection stays open.
    pub keep_alive_timeout_secs: Option<Spanned<f64>>,
    /// Require `Authorization: Bearer <token>` on every endpoint but health. Inline, it lands
    /// in git with the recipe: prefer `bearer_token_file` or `bearer_token_env`.
    pub bearer_token: Option<Spanned<String>>,
    /// A file holding the token, relative to the recipe, read at build time.
    pub bearer_token_file: Option<Spanned<PathBuf>>,
    /// An environment variable holding the token at build time.
    pub bearer_token_env: Option<Spanned<String>>,
    /// Serve the API over TLS: PEM files relative to the recipe.
    pub tls: Option<Spanned<TlsSection>>,
    /// Take new model versions over the repository API (`/v2/repository/...`), checked before
    /// they serve and kept on the data partition. Needs a bearer token.
    pub model_updates: Option<Spanned<bool>>,
    /// Largest model upload, e.g. "64MiB" (default 256 MiB).
    pub max_model: Option<Spanned<String>>,
    /// An ed25519 public key file from `edgeimg keygen`, relative to the recipe: once named,
    /// the device takes only models signed with its secret key (`edgeimg sign-model`).
    pub model_public_key: Option<Spanned<PathBuf>>,
    /// "quick": ready on each model's quick plan, the optimised one swapped in when built;
    /// "optimised": ready once the optimised plan is built.
    #[serde(default)]
    pub start_plan: edge_config::Plan,
    /// Give a shell on the console (for debugging only: off by default).
    #[serde(default)]
    pub debug_shell: bool,
}

/// `tls = { cert = "tls/cert.pem", key = "tls/key.pem" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection {
            engine: default_engine(),
            listen: Spanned::new(0..0, default_listen_str()),
            threads: 0,
            max_concurrency: None,
            max_body: None,
            max_connections: None,
            header_timeout_secs: None,
            body_timeout_secs: None,
            body_min_rate: None,
            keep_alive_timeout_secs: None,
            bearer_token: None,
            bearer_token_file: None,
            bearer_token_env: None,
            tls: None,
            model_updates: None,
            max_model: None,
            model_public_key: None,
            start_plan: edge_config::Plan::Quick,
            debug_shell: false,
        }
    }
}

fn default_engine() -> Engine {
    Engine::Tract
}

fn default_listen_str() -> String {
    "0.0.0.0:8000".into()
}

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, default_listen_str())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    #[serde(default = "yes")]
    pub dhcp: bool,
    /// Interface for DHCP (default: the first Ethernet interface).
    pub interface: Option<String>,
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            dhcp: true,
            interface: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// One extra file to put into the image: from a host file or inline text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Host file, relative to the recipe.
    pub src: Option<PathBuf>,
    /// Inline contents (instead of `src`).
    pub content: Option<String>,
    /// Absolute path in the image.
    pub dest: Spanned<String>,
    /// Octal permission bits as a string, e.g. "0644" (default "0644").
    pub mode: Option<Spanned<String>>,
}

/// A check `edgeimg test` runs against the booted image.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: Spanned<String>,
    /// The model the check asks (by name); needed when the image serves several.
    pub model: Option<Spanned<String>>,
    /// Input tensors by name: a (nested) array of numbers, or `{ random = SEED }` for seeded
    /// uniform [0, 1) data of the model's frozen shape.
    #[serde(default)]
    pub inputs: BTreeMap<String, toml::Value>,
    /// Expected outputs by name (flat or nested arrays).
    #[serde(default)]
    pub expect: BTreeMap<String, toml::Value>,
    /// Also compare every output with the host's ONNX Runtime on the same input.
    #[serde(default)]
    pub compare_onnxruntime: bool,
    /// The largest absolute difference an output may have from what it is compared with: a
    /// finite number, 0 or more.
    #[serde(default = "default_tolerance")]
    pub tolerance: Spanned<f64>,
    /// Ask init to kill the server first, and check it comes back.
    #[serde(default)]
    pub kill_server: bool,
    /// A load test instead of one request: the inputs (each `{ random = SEED }` varied per
    /// request) from many clients at once, hostile requests interleaved; the answers must
    /// equal the host's ONNX Runtime (`compare_onnxruntime`) or the device's own at rest.
    pub load: Option<Spanned<LoadCheck>>,
    /// Slow clients, then a flood of bodies, each while a normal client keeps asking: its
    /// answers must come within the budget, the server's memory under the bound.
    pub attack: Option<Spanned<AttackCheck>>,
    /// Upload a new model to the device and expect it `committed` or `refused`.
    pub update: Option<Spanned<UpdateCheck>>,
    /// Restart the device ("clean", or "kill-mid-upload": QEMU killed with half an upload
    /// received); it must come back serving the same version with the same answers. Run after
    /// every other test, in recipe order.
    pub reboot: Option<Spanned<RebootCheck>>,
    /// Build this recipe with some keys changed as a system update, install it on the booted
    /// device and expect it committed, rolled back or refused.
    pub system_update: Option<Spanned<SystemUpdateCheck>>,
    /// Files the check uses, by name: a path (relative to the recipe) or a pinned download
    /// `{ url, sha256, member }`, fetched into the cache like a model. An input
    /// `{ image = "NAME", ... }` reads a PNG from them; `command` names them as `{NAME}`.
    #[serde(default)]
    pub files: BTreeMap<String, TestFile>,
    /// A host program run against the booted device instead of one request, e.g.
    /// `["python3", "../examples/ocr_client.py", "{api}", "{page}"]`: `{api}` is the device's
    /// API (`http://host:port`), `{NAME}` a file of `files`. It passes when it exits 0 and
    /// prints `expect_stdout`, when given. Run from the recipe's folder.
    #[serde(default)]
    pub command: Vec<String>,
    /// Text `command` must print.
    pub expect_stdout: Option<String>,
}

/// A file a `[[test]]` uses: a path relative to the recipe, or a pinned download.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TestFile {
    Path(String),
    Download {
        url: String,
        sha256: String,
        /// A file inside the download (a wheel, zip or tar).
        member: Option<String>,
    },
}

/// `load = { clients = 16, requests = 400, garbage_every = 5 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadCheck {
    /// Concurrent clients.
    pub clients: usize,
    /// Requests in all, hostile ones included.
    pub requests: usize,
    /// Every Nth request is hostile: garbage JSON, a wrong shape, an unknown model, a body
    /// over the device's max_body, bytes that are not HTTP, headers or a body trickled a byte a
    /// second (408 after the device's timeouts), an aborted connection (0: none).
    #[serde(default)]
    pub garbage_every: usize,
    /// The most the whole load may take, in seconds.
    #[serde(default = "default_load_seconds")]
    pub seconds: u64,
}

fn default_load_seconds() -> u64 {
    120
}

/// Bounds that keep a load test a test (loopback, a few seconds), not a benchmark.
const MAX_LOAD_CLIENTS: usize = 256;
const MAX_LOAD_REQUESTS: usize = 100_000;

fn default_tolerance() -> Spanned<f64> {
    Spanned::new(0..0, 1e-4)
}

impl TestCase {
    pub fn tolerance(&self) -> f64 {
        *self.tolerance.get_ref()
    }

    /// Whether a `command` test also asks for something only a request test does.
    fn command_is_not_alone(&self) -> bool {
        !self.inputs.is_empty() || self.checks_requests()
    }

    /// Whether the case holds the answer to anything: expected values, the host's ONNX
    /// Runtime, a killed server coming back, a load whose answers must agree, an attack the
    /// device must stand, an update it must commit or refuse, a reboot it must survive, or a
    /// command that must succeed against it.
    fn checks_something(&self) -> bool {
        self.checks_requests() || !self.command.is_empty()
    }

    /// Whether the case checks the device through requests of its own (all but `command`).
    fn checks_requests(&self) -> bool {
        !self.expect.is_empty()
            || self.compare_onnxruntime
            || self.kill_server
            || self.load.is_some()
            || self.attack.is_some()
            || self.update.is_some()
            || self.reboot.is_some()
            || self.system_update.is_some()
    }
}

/// Checks that serde cannot express: names, sizes, paths and addresses.
pub(super) fn validate(loaded: &LoadedRecipe) -> Result<(), RecipeError> {
    let r = &loaded.recipe;
    let name = &r.image.name;
    let valid_name = !name.get_ref().is_empty()
        && name.get_ref().len() <= 63
        && name
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.get_ref().starts_with('-');
    if !valid_name {
        return Err(loaded.error_at(
            name.span(),
            "image.name",
            format!(
                "{:?} is not a valid image name; use 1-63 lowercase letters, digits and '-' (it names files and the hostname)",
                name.get_ref()
            ),
        ));
    }
    for (key, size) in [
        ("image.size", &r.image.size),
        ("image.data_size", &r.image.data_size),
        ("image.slot_size", &r.image.slot_size),
        ("runtime.max_body", &r.runtime.max_body),
        ("runtime.max_model", &r.runtime.max_model),
    ] {
        if let Some(size) = size {
            parse_size(size.get_ref()).map_err(|msg| loaded.error_at(size.span(), key, msg))?;
        }
    }
    super::runtime::validate(loaded)?;
    super::system_updates::validate(loaded)?;
    if let Some(version) = &r.image.version {
        let v = version.get_ref();
        if v.is_empty()
            || v.len() > 64
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
        {
            return Err(loaded.error_at(
                version.span(),
                "image.version",
                format!("{v:?}: give 1-64 letters, digits and . _ + -, e.g. \"2\" or \"1.4.0\""),
            ));
        }
    }
    let listen = &r.runtime.listen;
    if listen.get_ref().parse::<std::net::SocketAddr>().is_err() {
        return Err(loaded.error_at(
            listen.span(),
            "runtime.listen",
            format!(
                "{:?} is not an address:port; e.g. \"0.0.0.0:8000\"",
                listen.get_ref()
            ),
        ));
    }
    super::model::validate(loaded, &r.models)?;
    super::repository::validate(loaded, &r.alpine.third_party)?;
    if let Some(m) = &r.alpine.device_mirror {
        if !m.get_ref().starts_with("https://") {
            return Err(loaded.error_at(
                m.span(),
                "alpine.device_mirror",
                format!(
                    "{:?}: give the https:// URL a device fetches Alpine from, e.g. \"{DEFAULT_MIRROR}\"",
                    m.get_ref()
                ),
            ));
        }
    }
    for test in &r.tests {
        validate_test(loaded, test)?;
        super::model::validate_test_model(loaded, &r.models, test)?;
        if let Some(load) = &test.load {
            validate_load(load.get_ref())
                .map_err(|msg| loaded.error_at(load.span(), "test.load", msg))?;
        }
        if let Some(attack) = &test.attack {
            if test.load.is_some() {
                return Err(loaded.error_at(
                    attack.span(),
                    "test.attack",
                    "a test is a load or an attack, not both; make two [[test]]s",
                ));
            }
            super::attack::validate(loaded, attack)?;
        }
        if let Some(update) = &test.update {
            if test.load.is_some() || test.attack.is_some() {
                return Err(loaded.error_at(
                    update.span(),
                    "test.update",
                    "a test is an update, a load or an attack, one of them; make two [[test]]s",
                ));
            }
            super::update::validate(loaded, update)?;
        }
        if let Some(reboot) = &test.reboot {
            if test.load.is_some() || test.attack.is_some() || test.update.is_some() {
                return Err(loaded.error_at(
                    reboot.span(),
                    "test.reboot",
                    "a reboot test only restarts the device and asks its inputs; make the load, attack or update another [[test]]",
                ));
            }
            super::update::validate_reboot(loaded, reboot)?;
        }
    }
    for file in &r.files {
        if !file.dest.get_ref().starts_with('/') {
            return Err(loaded.error_at(
                file.dest.span(),
                "files.dest",
                format!(
                    "{:?} must be an absolute path in the image, e.g. \"/etc/motd\"",
                    file.dest.get_ref()
                ),
            ));
        }
        if file.src.is_some() == file.content.is_some() {
            return Err(loaded.error_at(
                file.dest.span(),
                "files",
                "give exactly one of `src` (a host file) or `content` (inline text)",
            ));
        }
        if let Some(mode) = &file.mode {
            parse_mode(mode.get_ref())
                .map_err(|msg| loaded.error_at(mode.span(), "files.mode", msg))?;
        }
    }
    Ok(())
}

/// A check that cannot fail is refused: a tolerance every difference is within (NaN compares
/// false with everything, infinity exceeds every difference), or no check at all.
fn validate_test(loaded: &LoadedRecipe, test: &TestCase) -> Result<(), RecipeError> {
    let tolerance = test.tolerance();
    let effect = if tolerance.is_nan() || tolerance == f64::INFINITY {
        Some("lets every answer pass")
    } else if tolerance < 0.0 {
        Some("lets no answer pass")
    } else {
        None
    };
    if let Some(effect) = effect {
        return Err(loaded.error_at(
            test.tolerance.span(),
            "test.tolerance",
            format!(
                "tolerance = {tolerance} {effect}; give the largest difference allowed, a finite \
                 number of 0 or more, e.g. tolerance = 1e-4"
            ),
        ));
    }
    if test.expect_stdout.is_some() && test.command.is_empty() {
        return Err(loaded.error_at(
            test.name.span(),
            "test.expect_stdout",
            "expect_stdout is what a `command` must print, and this test runs none; add `command = [...]` or drop it",
        ));
    }
    if !test.command.is_empty() && test.command_is_not_alone() {
        return Err(loaded.error_at(
            test.name.span(),
            "test.command",
            "a command test only runs its command against the device; make the inputs, comparisons, load, attack, update or reboot another [[test]]",
        ));
    }
    if !test.checks_something() {
        return Err(loaded.error_at(
            test.name.span(),
            "test",
            format!(
                "test {:?} checks nothing: any answer would pass; add `expect = {{ OUTPUT = [...] }}`, \
                 `compare_onnxruntime = true`, `kill_server = true`, `load = {{ ... }}`, `attack = {{ ... }}`, `update = {{ ... }}`, `reboot = ...` or `command = [...]`",
                test.name.get_ref()
            ),
        ));
    }
    Ok(())
}

fn validate_load(load: &LoadCheck) -> Result<(), String> {
    if !(1..=MAX_LOAD_CLIENTS).contains(&load.clients) {
        return Err(format!(
            "clients = {} is out of range; use 1 to {MAX_LOAD_CLIENTS}",
            load.clients
        ));
    }
    if !(load.clients..=MAX_LOAD_REQUESTS).contains(&load.requests) {
        return Err(format!(
            "requests = {} is out of range; use at least one per client ({}) and at most {MAX_LOAD_REQUESTS}",
            load.requests, load.clients
        ));
    }
    if load.garbage_every == 1 {
        return Err(
            "garbage_every = 1 leaves no good requests; use 0 (none) or 2 and up".to_string(),
        );
    }
    if load.seconds == 0 {
        return Err("seconds = 0 leaves no time; give the most the load may take".to_string());
    }
    Ok(())
}

/// "64MiB", "1 GiB", "512000" -> bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| {
            format!("{text:?} is not a size; write e.g. \"64MiB\", \"1GiB\" or a number of bytes")
        })
}

/// "0644" -> 0o644.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{text:?} is not an octal mode; write e.g. \"0644\" or \"0755\""))
}

#[cfg(test)]
mod tests {
    use super::super::LoadedRecipe;
    use std::path::Path;

    fn with_test(test: &str) -> Result<LoadedRecipe, String> {
        let text = format!(
            "[image]\nname = \"x\"\nboard = \"qemu-x86_64\"\n\n[[test]]\nname = \"t\"\n{test}\n"
        );
        LoadedRecipe::parse(Path::new("r.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_load_check_parses_with_a_default_time_bound() {
        let loaded =
            with_test("load = { clients = 16, requests = 400, garbage_every = 5 }").unwrap();
        let load = loaded.recipe.tests[0]
            .load
            .as_ref()
            .unwrap()
            .get_ref()
            .clone();
        assert_eq!(
            (load.clients, load.requests, load.garbage_every),
            (16, 400, 5)
        );
        assert_eq!(load.seconds, 120);
    }

    #[test]
    fn load_check_mistakes_name_the_place_and_the_fix() {
        let error =
            with_test("load = { clients = 4, requests = 40, garbage_every = 1 }").unwrap_err();
        assert!(
            error.contains("r.toml:7") && error.contains("test.load"),
            "{error}"
        );
        assert!(error.contains("use 0 (none) or 2 and up"), "{error}");
        let error = with_test("load = { clients = 0, requests = 40 }").unwrap_err();
        assert!(error.contains("clients = 0"), "{error}");
        let error = with_test("load = { clients = 8, requests = 4 }").unwrap_err();
        assert!(error.contains("at least one per client"), "{error}");
        let error = with_test("load = { clients = 8, requests = 40, rate = 3 }").unwrap_err();
        assert!(error.contains("rate"), "{error}");
    }

    #[test]
    fn a_tolerance_every_answer_passes_is_refused_naming_the_line_and_the_fix() {
        for (value, effect) in [
            ("nan", "lets every answer pass"),
            ("+nan", "lets every answer pass"),
            ("inf", "lets every answer pass"),
            ("-1e-3", "lets no answer pass"),
            ("-inf", "lets no answer pass"),
        ] {
            let error =
                with_test(&format!("compare_onnxruntime = true\ntolerance = {value}")).unwrap_err();
            assert!(
                error.contains("r.toml:8") && error.contains("test.tolerance"),
                "{value}: {error}"
            );
            assert!(error.contains(effect), "{value}: {error}");
            assert!(error.contains("e.g. tolerance = 1e-4"), "{value}: {error}");
        }
        with_test("compare_onnxruntime = true\ntolerance = 0").unwrap();
        with_test("compare_onnxruntime = true\ntolerance = 0.5").unwrap();
    }

    #[test]
    fn a_test_that_checks_nothing_is_refused_naming_it_and_the_checks() {
        let error = with_test("inputs = { x = { random = 7 } }").unwrap_err();
        assert!(
            error.contains("r.toml:6") && error.contains("test:"),
            "{error}"
        );
        assert!(error.contains("test \"t\" checks nothing"), "{error}");
        for check in [
            "expect =",
            "compare_onnxruntime = true",
            "kill_server = true",
            "load =",
        ] {
            assert!(error.contains(check), "{check}: {error}");
        }
        for enough in [
            "expect = { y = [1.0, 2.0] }",
            "compare_onnxruntime = true",
            "kill_server = true",
            "load = { clients = 2, requests = 4 }",
        ] {
            with_test(&format!("inputs = {{ x = {{ random = 7 }} }}\n{enough}"))
                .unwrap_or_else(|e| panic!("{enough}: {e}"));
        }
    }

    #[test]
    fn a_command_test_runs_alone_and_expect_stdout_needs_a_command() {
        with_test("command = [\"{python}\", \"client.py\", \"{api}\"]\nexpect_stdout = \"ok\"")
            .unwrap();
        let error = with_test("compare_onnxruntime = true\nexpect_stdout = \"ok\"").unwrap_err();
        assert!(
            error.contains("test.expect_stdout") && error.contains("add `command = [...]`"),
            "{error}"
        );
        let error = with_test("command = [\"true\"]\ncompare_onnxruntime = true").unwrap_err();
        assert!(
            error.contains("test.command") && error.contains("make the inputs"),
            "{error}"
        );
    }
}
