//! What the server on the device is told: engine, address, limits, and where its secrets come
//! from. Secrets stay where the recipe points (a file, an environment variable) until the
//! image is written: the plan, which is printed and hashed, holds only their source.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use edge_config::{Engine, Limits, DEFAULT_MAX_MODEL_BYTES};

use crate::recipe::{parse_size, LoadedRecipe, RuntimeSection};

#[derive(Debug, Clone)]
pub struct RuntimePlan {
    pub engine: Engine,
    pub listen: String,
    pub threads: usize,
    pub max_concurrency: Option<usize>,
    /// `None`: the server derives it from the model.
    pub max_body_bytes: Option<u64>,
    pub limits: Limits,
    pub bearer_token: Option<Secret>,
    pub tls: Option<TlsPlan>,
    pub model_updates: Option<ModelUpdatesPlan>,
    /// The plan the server opens its port on (the engine's, not this build plan).
    pub start_plan: edge_config::Plan,
    pub debug_shell: bool,
}

/// The model repository API: the upload limit and the key uploads must be signed with.
#[derive(Debug, Clone)]
pub struct ModelUpdatesPlan {
    pub max_model_bytes: u64,
    /// A host file: the ed25519 public key, base64 (from `edgeimg keygen`).
    pub public_key: Option<PathBuf>,
}

/// Where a secret comes from. Its `Debug` never shows an inline value.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Written in the recipe itself (and so in git with it).
    Inline(String),
    /// A host file, read at build time.
    File(PathBuf),
    /// An environment variable, read at build time.
    Env(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Inline(..)"),
            Secret::File(path) => write!(f, "File({path:?})"),
            Secret::Env(var) => write!(f, "Env({var:?})"),
        }
    }
}

impl Secret {
    /// The secret: one line, surrounding whitespace trimmed.
    pub fn read(&self) -> Result<String> {
        let (value, source) = match self {
            Secret::Inline(value) => (value.clone(), "runtime.bearer_token".to_string()),
            Secret::File(path) => (
                std::fs::read_to_string(path).with_context(|| {
                    format!("reading runtime.bearer_token_file {}", path.display())
                })?,
                format!("runtime.bearer_token_file {}", path.display()),
            ),
            Secret::Env(var) => (
                std::env::var(var).with_context(|| {
                    format!("runtime.bearer_token_env names {var}, which is not set (export {var}=<token> before building)")
                })?,
                format!("runtime.bearer_token_env {var}"),
            ),
        };
        let value = value.trim();
        if value.is_empty() {
            bail!("{source} is empty; put the token there, or remove the key to disable authentication");
        }
        if value.contains(['\n', '\r']) {
            bail!("{source} holds more than one line; the token must be one line");
        }
        Ok(value.to_string())
    }
}

/// The API's certificate chain and key, host files.
#[derive(Debug, Clone)]
pub struct TlsPlan {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl RuntimePlan {
    pub fn new(loaded: &LoadedRecipe, r: &RuntimeSection) -> RuntimePlan {
        let defaults = Limits::default();
        let ms = |secs: &Option<toml::Spanned<f64>>, default: u64| {
            secs.as_ref()
                .map_or(default, |s| (s.get_ref() * 1000.0).round() as u64)
        };
        let limits = Limits {
            header_timeout_ms: ms(&r.header_timeout_secs, defaults.header_timeout_ms),
            body_timeout_ms: ms(&r.body_timeout_secs, defaults.body_timeout_ms),
            body_min_rate: r
                .body_min_rate
                .as_ref()
                .map_or(defaults.body_min_rate, |rate| {
                    parse_size(rate.get_ref()).expect("validated")
                }),
            keep_alive_timeout_ms: ms(&r.keep_alive_timeout_secs, defaults.keep_alive_timeout_ms),
            max_connections: r
                .max_connections
                .as_ref()
                .map_or(defaults.max_connections, |c| *c.get_ref()),
        };
        let bearer_token = match (&r.bearer_token, &r.bearer_token_file, &r.bearer_token_env) {
            (Some(token), _, _) => Some(Secret::Inline(token.get_ref().clone())),
            (_, Some(file), _) => Some(Secret::File(loaded.resolve(file.get_ref()))),
            (_, _, Some(var)) => Some(Secret::Env(var.get_ref().clone())),
            _ => None,
        };
        RuntimePlan {
            engine: r.engine,
            listen: r.listen.get_ref().clone(),
            threads: r.threads,
            max_concurrency: r.max_concurrency,
            max_body_bytes: r
                .max_body
                .as_ref()
                .map(|s| parse_size(s.get_ref()).expect("validated")),
            limits,
            bearer_token,
            tls: r.tls.as_ref().map(|tls| TlsPlan {
                cert: loaded.resolve(&tls.get_ref().cert),
                key: loaded.resolve(&tls.get_ref().key),
            }),
            model_updates: r
                .model_updates
                .as_ref()
                .filter(|on| *on.get_ref())
                .map(|_| ModelUpdatesPlan {
                    max_model_bytes: r.max_model.as_ref().map_or(DEFAULT_MAX_MODEL_BYTES, |s| {
                        parse_size(s.get_ref()).expect("validated")
                    }),
                    public_key: r
                        .model_public_key
                        .as_ref()
                        .map(|key| loaded.resolve(key.get_ref())),
                }),
            start_plan: r.start_plan,
            debug_shell: r.debug_shell,
        }
    }

    /// The API's bearer token, read from where the recipe points (for clients of the device:
    /// `edgeimg test`, the benchmark); held in memory only.
    pub fn api_token(&self) -> Result<Option<String>> {
        self.bearer_token.as_ref().map(Secret::read).transpose()
    }

    /// What the build should warn about.
    pub fn warnings(&self) -> Vec<String> {
        match self.bearer_token {
            Some(Secret::Inline(_)) => vec![
                "runtime.bearer_token is written in the recipe, so it lands in git with it; use bearer_token_file or bearer_token_env".to_string(),
            ],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(runtime: &str) -> RuntimePlan {
        let text =
            format!("[image]\nname = \"x\"\nboard = \"qemu-x86_64\"\n[runtime]\n{runtime}\n");
        let loaded = LoadedRecipe::parse(std::path::Path::new("recipes/r.toml"), text).unwrap();
        RuntimePlan::new(&loaded, &loaded.recipe.runtime)
    }

    #[test]
    fn limits_default_and_follow_the_recipe() {
        assert_eq!(plan("").limits, Limits::default());
        let p = plan("header_timeout_secs = 2.5\nbody_min_rate = \"16KiB\"\nmax_connections = 8");
        assert_eq!(p.limits.header_timeout_ms, 2500);
        assert_eq!(p.limits.body_min_rate, 16 << 10);
        assert_eq!(p.limits.max_connections, 8);
        assert_eq!(p.limits.body_timeout_ms, Limits::default().body_timeout_ms);
        assert_eq!(p.max_body_bytes, None);
    }

    #[test]
    fn the_start_plan_is_quick_unless_the_recipe_asks_for_the_optimised_one() {
        assert_eq!(plan("").start_plan, edge_config::Plan::Quick);
        assert_eq!(
            plan("start_plan = \"optimised\"").start_plan,
            edge_config::Plan::Optimised
        );
        let text =
            "[image]\nname = \"x\"\nboard = \"qemu-x86_64\"\n[runtime]\nstart_plan = \"fast\"\n";
        let error = LoadedRecipe::parse(std::path::Path::new("recipes/r.toml"), text.into())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("start_plan")
                && error.contains("`quick`")
                && error.contains("`optimised`"),
            "{error}"
        );
    }

    #[test]
    fn secrets_are_read_late_and_never_shown() {
        let inline = plan("bearer_token = \"s3cret-inline\"");
        assert!(!format!("{inline:?}").contains("s3cret"), "{inline:?}");
        assert_eq!(
            inline.bearer_token.as_ref().unwrap().read().unwrap(),
            "s3cret-inline"
        );
        assert_eq!(inline.warnings().len(), 1);
        let file = plan("bearer_token_file = \"../secrets/token\"");
        assert_eq!(
            file.bearer_token,
            Some(Secret::File("recipes/../secrets/token".into()))
        );
        assert!(file.warnings().is_empty());
        let err = format!("{:#}", file.bearer_token.unwrap().read().unwrap_err());
        assert!(err.contains("recipes/../secrets/token"), "{err}");
        let env = plan("bearer_token_env = \"EDGEIMG_TEST_UNSET_TOKEN\"");
        let err = format!("{:#}", env.bearer_token.unwrap().read().unwrap_err());
        assert!(
            err.contains("EDGEIMG_TEST_UNSET_TOKEN, which is not set"),
            "{err}"
        );
    }
}
