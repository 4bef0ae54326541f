//! The API's secrets in the image: the bearer token and the TLS key, each in its own file that
//! only the server's account can read (0400 in a 0500 folder it owns), named by path in the
//! world-readable device config, never copied into it. The certificate is public.

use anyhow::{Context, Result};
use edge_config::TlsFiles;

use super::path;
use super::users::Account;
use crate::plan::RuntimePlan;
use crate::rootfs::{Meta, RootfsTree};

const SECRETS_DIR: &str = "/etc/edgeimg/secrets";
const BEARER_TOKEN: &str = "/etc/edgeimg/secrets/bearer-token";
const TLS_KEY: &str = "/etc/edgeimg/secrets/tls-key.pem";
const TLS_CERT: &str = "/etc/edgeimg/tls-cert.pem";

/// Where the server finds its secrets on the device.
#[derive(Debug, Default)]
pub struct Placed {
    pub bearer_token_file: Option<String>,
    pub tls: Option<TlsFiles>,
}

pub fn add_secrets(
    runtime: &RuntimePlan,
    tree: &mut RootfsTree,
    account: &Account,
    mtime: u64,
) -> Result<Placed> {
    let mut placed = Placed::default();
    if runtime.bearer_token.is_none() && runtime.tls.is_none() {
        return Ok(placed);
    }
    let owned = |mode| Meta {
        uid: account.uid,
        gid: account.gid,
        ..Meta::root(mode, mtime)
    };
    tree.add_dir(path(SECRETS_DIR), owned(0o500))?;
    if let Some(secret) = &runtime.bearer_token {
        let token = secret.read()?;
        tree.add_file(
            path(BEARER_TOKEN),
            format!("{token}\n").into_bytes(),
            owned(0o400),
        )?;
        placed.bearer_token_file = Some(BEARER_TOKEN.to_string());
    }
    if let Some(tls) = &runtime.tls {
        let read = |file: &std::path::Path, what: &str| {
            std::fs::read(file)
                .with_context(|| format!("reading runtime.tls.{what} {}", file.display()))
        };
        tree.add_file(
            path(TLS_CERT),
            read(&tls.cert, "cert")?,
            Meta::root(0o444, mtime),
        )?;
        tree.add_file(path(TLS_KEY), read(&tls.key, "key")?, owned(0o400))?;
        placed.tls = Some(TlsFiles {
            cert: TLS_CERT.to_string(),
            key: TLS_KEY.to_string(),
        });
    }
    Ok(placed)
}
