//! RSA signatures over the next gzip stream, as abuild-sign writes them: a tar entry named
//! `.SIGN.RSA.<key>` (PKCS#1 v1.5 over SHA-1) or `.SIGN.RSA256.<key>` (over SHA-256).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::keys;

/// A public key apk would accept, under the name signatures refer to it by.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub name: String,
    pub pem: String,
    key: RsaPublicKey,
}

/// The keys we trust: Alpine's built-in ones plus the recipe's `alpine.keys`.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<String, TrustedKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlgo {
    Sha1,
    Sha256,
}

/// One `.SIGN.*` entry found in a signature stream.
#[derive(Debug, Clone)]
pub struct Signature {
    pub algo: SigAlgo,
    pub key_name: String,
    pub bytes: Vec<u8>,
}

const TRUST_HINT: &str =
    "to trust it, add its public key to the recipe: alpine.keys = [\"path/to/key.rsa.pub\"]";

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("{what} is not signed (no .SIGN.RSA.* entry); edgeimg only installs from signed repositories")]
    Unsigned { what: String },
    #[error("{what} is signed with key {key:?}, which is not trusted; {TRUST_HINT}", key = keys.join("\", \""))]
    UnknownKey { what: String, keys: Vec<String> },
    #[error("{what}: BAD SIGNATURE by key {key:?}: the file was changed after it was signed (damaged in transit, or tampered with); fetch it again, and if it persists do not trust this mirror")]
    Bad { what: String, key: String },
    #[error("cannot read trusted key {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("{what}: the signature stream is not a valid tar: {message}")]
    Malformed { what: String, message: String },
}

impl Keyring {
    /// Alpine's official keys, embedded at build time.
    pub fn builtin() -> Self {
        let mut ring = Keyring::default();
        for (name, pem) in keys::BUILTIN {
            let key = RsaPublicKey::from_public_key_pem(pem)
                .unwrap_or_else(|e| unreachable!("embedded key {name} is valid PEM: {e}"));
            ring.insert(name, pem, key);
        }
        ring
    }

    fn insert(&mut self, name: &str, pem: &str, key: RsaPublicKey) {
        self.keys.insert(
            name.to_string(),
            TrustedKey {
                name: name.to_string(),
                pem: pem.to_string(),
                key,
            },
        );
    }

    /// Trust one more key; its file name is the name signatures use (`me@x-1234.rsa.pub`).
    pub fn add_file(&mut self, path: &Path) -> Result<(), SignatureError> {
        let fail = |message: String| SignatureError::KeyFile {
            path: path.to_path_buf(),
            message,
        };
        let pem = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let key = RsaPublicKey::from_public_key_pem(&pem).map_err(|e| {
            fail(format!(
                "not an RSA public key in PEM form (-----BEGIN PUBLIC KEY-----): {e}"
            ))
        })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| fail("the file name is not UTF-8".into()))?;
        self.insert(name, &pem, key);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&TrustedKey> {
        self.keys.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Check `signed` (the compressed bytes of the stream after the signature stream) against
    /// the first signature made by a key we trust; returns that key's name.
    pub fn verify(
        &self,
        signatures: &[Signature],
        signed: &[u8],
        what: &str,
    ) -> Result<String, SignatureError> {
        if signatures.is_empty() {
            return Err(SignatureError::Unsigned { what: what.into() });
        }
        let Some((sig, key)) = signatures
            .iter()
            .find_map(|s| self.keys.get(&s.key_name).map(|k| (s, k)))
        else {
            return Err(SignatureError::UnknownKey {
                what: what.into(),
                keys: signatures.iter().map(|s| s.key_name.clone()).collect(),
            });
        };
        let ok = match sig.algo {
            SigAlgo::Sha1 => key.key.verify(
                Pkcs1v15Sign::new::<Sha1>(),
                &Sha1::digest(signed),
                &sig.bytes,
            ),
            SigAlgo::Sha256 => key.key.verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(signed),
                &sig.bytes,
            ),
        };
        ok.map_err(|_| SignatureError::Bad {
            what: what.into(),
            key: key.name.clone(),
        })?;
        Ok(key.name.clone())
    }
}

/// The `.SIGN.*` entries of a decompressed signature stream; empty if the stream holds other
/// entries (an unsigned file whose first stream is already the content).
pub fn read_signatures(tar_bytes: &[u8], what: &str) -> Result<Vec<Signature>, SignatureError> {
    let malformed = |e: std::io::Error| SignatureError::Malformed {
        what: what.into(),
        message: e.to_string(),
    };
    let mut archive = tar::Archive::new(tar_bytes);
    let mut found = Vec::new();
    for entry in archive.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        let path = entry
            .path()
            .map_err(malformed)?
            .to_string_lossy()
            .into_owned();
        let (algo, key_name) = if let Some(k) = path.strip_prefix(".SIGN.RSA256.") {
            (SigAlgo::Sha256, k)
        } else if let Some(k) = path.strip_prefix(".SIGN.RSA.") {
            (SigAlgo::Sha1, k)
        } else {
            return Ok(Vec::new());
        };
        let key_name = key_name.to_string();
        let bytes = super::apk::read_regular(&mut entry).map_err(malformed)?;
        found.push(Signature {
            algo,
            key_name,
            bytes,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_keys_are_alpines() {
        let ring = Keyring::builtin();
        assert_eq!(ring.names().count(), keys::BUILTIN.len());
        assert!(ring
            .get("alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub")
            .is_some());
        assert!(ring
            .get("alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub")
            .is_some());
    }

    #[test]
    fn unknown_key_error_says_how_to_trust_it() {
        let ring = Keyring::builtin();
        let sig = Signature {
            algo: SigAlgo::Sha1,
            key_name: "someone-1234.rsa.pub".into(),
            bytes: vec![0; 256],
        };
        let err = ring
            .verify(&[sig], b"data", "index x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("someone-1234.rsa.pub"), "{err}");
        assert!(err.contains("alpine.keys = ["), "{err}");
    }
}
