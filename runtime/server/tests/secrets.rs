//! Secrets kept out of the config: a bearer token read from its own file, and TLS on the API,
//! checked with Python's `requests` verifying the certificate against a CA made here (rcgen).

mod common;

use std::path::Path;

use common::*;
use edge_config::{Engine, TlsFiles};
use serde_json::json;

const TOKEN: &str = "from-a-file-0123456789";

fn token_file(dir: &Path) -> String {
    let path = dir.join("bearer-token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path.to_string_lossy().into_owned()
}

fn request() -> serde_json::Value {
    json!({"inputs": [{"name": "x", "shape": TINY_MLP_SHAPE, "datatype": "FP32",
        "data": pseudo_random(16, 1)}]})
}

#[test]
fn a_token_from_its_file_guards_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_mlp_model();
    let mut config = runtime_config(Engine::Tract, &[("tiny-mlp", &model)]);
    config.bearer_token_file = Some(token_file(dir.path()));
    let server = Server::start(config);
    let infer = server.url("/v2/models/tiny-mlp/infer");
    let agent = client();
    assert_eq!(post_json(&agent, &infer, &request()).0, 401);
    let with = |token: &str| {
        agent
            .post(&infer)
            .header("Authorization", format!("Bearer {token}"))
            .send(serde_json::to_vec(&request()).unwrap())
            .unwrap()
            .status()
    };
    assert_eq!(with(TOKEN), 200);
    assert_eq!(with(&TOKEN[1..]), 401);
}

/// A CA, and a certificate for localhost and 127.0.0.1 signed by it: (CA PEM, cert PEM, key PEM).
fn certificates() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "edgeimg test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

#[test]
fn tls_serves_a_client_that_verifies_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let ca = write("ca.pem", &ca);
    let model = tiny_mlp_model();
    let mut config = runtime_config(Engine::Tract, &[("tiny-mlp", &model)]);
    config.tls = Some(TlsFiles {
        cert: write("cert.pem", &cert),
        key: write("key.pem", &key),
    });
    config.bearer_token_file = Some(token_file(dir.path()));
    let server = Server::start(config);
    let address = server.base.trim_start_matches("http://").to_string();
    eprint!(
        "{}",
        python_script("tls_client.py", &[&address, &ca, TOKEN])
    );
    // Plain HTTP on the TLS port gets nowhere.
    let plain = client().get(&server.url("/v2/health/live")).call();
    assert!(plain.is_err(), "plain HTTP was answered on the TLS port");
}

#[test]
fn tls_files_that_do_not_match_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, _) = certificates();
    let (_, _, other_key) = certificates();
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), other_key).unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem").to_string_lossy().into_owned(),
        key: dir.path().join("key.pem").to_string_lossy().into_owned(),
    };
    let refused = |files: &TlsFiles| match edge_runtime::net::tls::acceptor(files) {
        Ok(_) => panic!("{files:?} was accepted"),
        Err(e) => format!("{e:#}"),
    };
    let err = refused(&files);
    assert!(err.contains("does not match the key"), "{err}");
    let missing = TlsFiles {
        cert: "/nonexistent/cert.pem".into(),
        ..files
    };
    let err = refused(&missing);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}
