//! Loading and checking the `runtime` section of the device config the builder wrote.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, ensure, Context};
use edge_config::{DeviceConfig, Engine, RuntimeConfig};

/// Reads the device config at `path` and returns its checked `runtime` section.
pub fn load(path: &Path) -> anyhow::Result<RuntimeConfig> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the device config {} (pass another with --config PATH)",
            path.display()
        )
    })?;
    let config = DeviceConfig::from_toml(&text)
        .with_context(|| format!("parsing the device config {}", path.display()))?;
    check(&config.runtime).with_context(|| format!("in {} [runtime]", path.display()))?;
    Ok(config.runtime)
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
        runtime.max_body_bytes > 0,
        "max_body_bytes must be at least 1"
    );
    if runtime.engine == Engine::Onnxruntime && runtime.onnxruntime_library.is_none() {
        bail!(
            "engine = \"onnxruntime\" needs onnxruntime_library = \"/path/to/libonnxruntime.so\""
        );
    }
    if runtime.bearer_token.as_deref() == Some("") {
        bail!("bearer_token is empty; remove it to disable authentication or set a secret");
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
            engine: Engine::Tract,
            onnxruntime_library: None,
            listen: "127.0.0.1:8000".into(),
            threads: 0,
            max_body_bytes: 1024,
            max_concurrency: 2,
            bearer_token: None,
            models: vec![ModelConfig {
                name: "m".into(),
                path: "/m.onnx".into(),
                version: "1".into(),
            }],
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
    }
}
