//! TLS on the API: rustls (TLS 1.2 and 1.3 only, its safe defaults) with ring, from PEM files.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use edge_config::TlsFiles;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// An acceptor for the certificate chain and key in `files`.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the TLS certificate chain {} (PEM)", files.cert))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no certificate (PEM, leaf first)",
        files.cert
    );
    let key = PrivateKeyDer::from_pem_file(Path::new(&files.key))
        .with_context(|| format!("reading the TLS private key {} (PEM)", files.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| format!("{} does not match the key {}", files.cert, files.key))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
