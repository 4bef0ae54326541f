//! Reading and checking the device configuration before anything depends on it.

use std::net::SocketAddr;
use std::path::Path;

use edge_config::DeviceConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source} (the image builder writes it; rebuild the image)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid device config: {source}")]
    Parse {
        path: String,
        source: Box<edge_config::TomlError>,
    },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
}

/// Reads the config at `path` and checks what init relies on.
pub fn load(path: &Path) -> Result<DeviceConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text).map_err(|error| match error {
        ParseError::Toml(source) => ConfigError::Parse {
            path: shown.clone(),
            source,
        },
        ParseError::Invalid(problem) => ConfigError::Invalid {
            path: shown.clone(),
            problem,
        },
    })
}

#[derive(Debug)]
pub enum ParseError {
    Toml(Box<edge_config::TomlError>),
    Invalid(String),
}

/// Parses config text and checks it; the problems name the field and the fix.
pub fn parse(text: &str) -> Result<DeviceConfig, ParseError> {
    let config = DeviceConfig::from_toml(text).map_err(|e| ParseError::Toml(Box::new(e)))?;
    listen_address(&config.runtime.listen).map_err(ParseError::Invalid)?;
    if !config.init.server_path.starts_with('/') {
        return Err(ParseError::Invalid(format!(
            "init.server_path {:?} must be an absolute path inside the image",
            config.init.server_path
        )));
    }
    if config.init.server_uid == 0 || config.init.server_gid == 0 {
        return Err(ParseError::Invalid(
            "init.server_uid and init.server_gid must not be 0: the server runs unprivileged"
                .to_string(),
        ));
    }
    if let Some(data) = &config.init.data {
        if data.label.is_none() && data.partuuid.is_none() {
            return Err(ParseError::Invalid(
                "init.data needs `label` or `partuuid` to find the partition".to_string(),
            ));
        }
        if !data.mountpoint.starts_with('/') {
            return Err(ParseError::Invalid(format!(
                "init.data.mountpoint {:?} must be an absolute path",
                data.mountpoint
            )));
        }
    }
    Ok(config)
}

/// The socket address in `runtime.listen`, e.g. `0.0.0.0:8000`.
pub fn listen_address(listen: &str) -> Result<SocketAddr, String> {
    listen.parse().map_err(|_| {
        format!("runtime.listen {listen:?} is not an IP:port address such as \"0.0.0.0:8000\"")
    })
}

/// The names of the served models, for the readiness line.
pub fn model_names(config: &DeviceConfig) -> String {
    let names: Vec<&str> = config
        .runtime
        .models
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
hostname = "edge"
[init]
modules = ["/lib/modules/x/virtio_net.ko.gz"]
server_uid = 1000
server_gid = 1000
server_path = "/usr/bin/edge-runtime"
[init.data]
label = "edge-data"
fstype = "ext4"
mountpoint = "/data"
[runtime]
engine = "tract"
listen = "0.0.0.0:8000"
[[runtime.models]]
name = "cls"
path = "/models/cls.onnx"
[[runtime.models]]
name = "det"
path = "/models/det.onnx"
"#;

    #[test]
    fn good_config_parses_with_defaults() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.init.modules.len(), 1);
        assert_eq!(model_names(&config), "cls,det");
        assert_eq!(listen_address(&config.runtime.listen).unwrap().port(), 8000);
    }

    #[test]
    fn bad_listen_address_names_the_field() {
        let text = GOOD.replace("0.0.0.0:8000", "localhost");
        match parse(&text) {
            Err(ParseError::Invalid(problem)) => assert!(problem.contains("runtime.listen")),
            other => panic!("expected invalid listen, got {other:?}"),
        }
    }

    #[test]
    fn root_server_is_refused() {
        let text = GOOD.replace("server_uid = 1000", "server_uid = 0");
        assert!(matches!(parse(&text), Err(ParseError::Invalid(p)) if p.contains("server_uid")));
    }

    #[test]
    fn data_partition_needs_a_way_to_find_it() {
        let text = GOOD.replace("label = \"edge-data\"\n", "");
        assert!(matches!(parse(&text), Err(ParseError::Invalid(p)) if p.contains("partuuid")));
    }

    #[test]
    fn unknown_field_is_a_toml_error() {
        let text = GOOD.replace("hostname = \"edge\"", "hostname = \"edge\"\ncolour = 1");
        assert!(matches!(parse(&text), Err(ParseError::Toml(_))));
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let error = load(Path::new("/nonexistent/device.toml")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/device.toml"));
    }
}
