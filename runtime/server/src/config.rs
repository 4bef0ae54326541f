//! Loading and checking the `runtime` section of the device config the builder wrote.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, ensure, Context};
use edge_config::{DeviceConfig, Engine, RuntimeConfig};

/// Reads the device config at `path` and returns its checked `runtime` section.
pub fn load(path: &Path) -> anyhow::Result<RuntimeConfig> {
    Ok(load_device(path)?.runtime)
}

/// Reads the device config at `path`, its `runtime` section checked.
pub fn load_device(path: &Path) -> anyhow::Result<DeviceConfig> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the device config {} (pass another with --config PATH)",
            path.display()
        )
    })?;
    let config = DeviceConfig::from_toml(&text)
        .with_context(|| format!("parsing the device config {}", path.display()))?;
    check(&config.runtime).with_context(|| format!("in {} [runtime]", path.display()))?;
    Ok(config)
}

/// The bearer token: inline, or read from `bearer_token_file` (one line; surrounding
/// whitespace is not part of it). A token file others can read is reported, not refused.
pub fn bearer_token(runtime: &RuntimeConfig) -> anyhow::Result<Option<String>> {
    let Some(path) = &runtime.bearer_token_file else {
        return Ok(runtime.bearer_token.clone());
    };
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("reading bearer_token_file {path} (it must be readable by the server's account)")
    })?;
    let token = text.trim();
    ensure!(
        !token.is_empty(),
        "bearer_token_file {path} is empty; put the token in it, or remove bearer_token_file to disable authentication"
    );
    ensure!(
        !token.contains(['\n', '\r']),
        "bearer_token_file {path} holds more than one line; put the token alone in it"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "bearer_token_file {path} has mode {:o}: others can read the token; chmod 600 it",
                mode & 0o777
            );
        }
    }
    Ok(Some(token.to_string()))
}

/// Refuses settings the server cannot honour, naming the field to fix.
pub fn check(runtime: &RuntimeConfig) -> anyhow::Result<()> {
    runtime.listen.parse::<SocketAddr>().with_context(|| {
        format!(
            "listen = {:?} is not an address:port such as \"0.0.0.0:8000\"",
            runtime.listen
        )
    })?;
    ensure!(
        runtime.max_concurrency > 0,
        "max_concurrency must be at least 1"
    );
    ensure!(
        runtime.max_body_bytes != Some(0),
        "max_body_bytes must be at least 1 (or left out: the server derives it from the models)"
    );
    if runtime.engine == Engine::Onnxruntime && runtime.onnxruntime_library.is_none() {
        bail!(
            "engine = \"onnxruntime\" needs onnxruntime_library = \"/path/to/libonnxruntime.so\""
        );
    }
    if runtime.bearer_token.as_deref() == Some("") {
        bail!("bearer_token is empty; remove it to disable authentication or set a secret");
    }
    if runtime.bearer_token.is_some() && runtime.bearer_token_file.is_some() {
        bail!("bearer_token and bearer_token_file are both set; keep one (the file: it is not world-readable)");
    }
    if let Some(updates) = &runtime.model_updates {
        ensure!(
            runtime.bearer_token.is_some() || runtime.bearer_token_file.is_some(),
            "model_updates is on without a bearer token: anyone on the network could replace the model; set bearer_token_file"
        );
        ensure!(
            updates.max_model_bytes > 0,
            "model_updates.max_model_bytes must be at least 1"
        );
    }
    let limits = &runtime.limits;
    for (name, value) in [
        ("limits.header_timeout_ms", limits.header_timeout_ms),
        ("limits.body_timeout_ms", limits.body_timeout_ms),
        ("limits.body_min_rate", limits.body_min_rate),
        ("limits.keep_alive_timeout_ms", limits.keep_alive_timeout_ms),
        ("limits.max_connections", limits.max_connections as u64),
    ] {
        ensure!(value > 0, "{name} must be at least 1");
    }
    ensure!(
        !runtime.models.is_empty(),
        "no [[runtime.models]]: nothing to serve"
    );
    let mut names = HashSet::new();
    for model in &runtime.models {
        ensure!(
            !model.name.is_empty() && !model.name.contains('/'),
            "model name {:?} must be non-empty and contain no '/'",
            model.name
        );
        ensure!(
            names.insert(&model.name),
            "model name {:?} is used twice",
            model.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_config::ModelConfig;

    fn runtime() -> RuntimeConfig {
        RuntimeConfig {
            models: vec![ModelConfig {
                name: "m".into(),
                path: "/m.onnx".into(),
                version: "1".into(),
            }],
            ..crate::limits::tests::config()
        }
    }

    #[test]
    fn accepts_a_sound_config() {
        check(&runtime()).unwrap();
    }

    #[test]
    fn names_the_field_to_fix() {
        let err = |f: fn(&mut RuntimeConfig)| {
            let mut r = runtime();
            f(&mut r);
            format!("{:#}", check(&r).unwrap_err())
        };
        assert!(err(|r| r.listen = "8000".into()).contains("listen"));
        assert!(err(|r| r.max_concurrency = 0).contains("max_concurrency"));
        assert!(err(|r| r.engine = Engine::Onnxruntime).contains("onnxruntime_library"));
        assert!(err(|r| r.models.clear()).contains("nothing to serve"));
        assert!(err(|r| r.models.push(r.models[0].clone())).contains("used twice"));
        assert!(err(|r| r.limits.header_timeout_ms = 0).contains("limits.header_timeout_ms"));
        assert!(err(|r| {
            r.bearer_token = Some("a".into());
            r.bearer_token_file = Some("/t".into());
        })
        .contains("keep one"));
        assert!(err(|r| {
            r.model_updates = Some(edge_config::ModelUpdates {
                store: "/data/models".into(),
                max_model_bytes: 1,
                public_key_file: None,
                golden: None,
            })
        })
        .contains("model_updates is on without a bearer token"));
    }

    #[test]
    fn the_token_file_holds_one_trimmed_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let mut r = runtime();
        r.bearer_token_file = Some(path.to_string_lossy().into_owned());
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(bearer_token(&r).unwrap().as_deref(), Some("s3cret"));
        std::fs::write(&path, "\n").unwrap();
        assert!(format!("{:#}", bearer_token(&r).unwrap_err()).contains("is empty"));
        std::fs::write(&path, "a\nb\n").unwrap();
        assert!(format!("{:#}", bearer_token(&r).unwrap_err()).contains("more than one line"));
        std::fs::remove_file(&path).unwrap();
        assert!(
            format!("{:#}", bearer_token(&r).unwrap_err()).contains("reading bearer_token_file")
        );
    }
}
