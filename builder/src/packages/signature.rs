//! RSA signatures over the next gzip stream, as abuild-sign writes them: a tar entry named
//! `.SIGN.RSA.<key>` (PKCS#1 v1.5 over SHA-1) or `.SIGN.RSA256.<key>` (over SHA-256).

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
    /// Where it came from: "built-in" or the key file, for messages.
    pub origin: String,
    key: RsaPublicKey,
}

impl TrustedKey {
    /// Name and the start of the key's sha256: unique even when two repositories' keys share
    /// a name (which signatures alone cannot tell apart).
    pub fn id(&self) -> String {
        let digest = hex::encode(Sha256::digest(self.pem.trim().as_bytes()));
        format!("{}#{}", self.name, &digest[..12])
    }

    fn describe(&self) -> String {
        format!("{} from {}", self.name, self.origin)
    }
}

/// The keys we trust: Alpine's built-in ones plus the recipe's (`alpine.keys` and each
/// repository's `key`/`keys`). Several keys may share a name: each is tried.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<TrustedKey>,
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
    #[error("{what} is signed by key {key:?}, which is not trusted (no trusted key has that name); {TRUST_HINT}", key = keys.join("\", \""))]
    UnknownKey { what: String, keys: Vec<String> },
    #[error("{what} is signed by key {key:?}, which is not trusted; the keys tried ({tried}) did not verify it. Either a different key of the same name signed it (trust that one: {TRUST_HINT}), or the file was changed after it was signed (fetch it again; if that persists, do not trust this repository)", key = keys.join("\", \""), tried = tried.join("; "))]
    Untrusted {
        what: String,
        keys: Vec<String>,
        tried: Vec<String>,
    },
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
            ring.insert(name, pem, "built-in", key);
        }
        ring
    }

    fn insert(&mut self, name: &str, pem: &str, origin: &str, key: RsaPublicKey) {
        let new = TrustedKey {
            name: name.to_string(),
            pem: pem.to_string(),
            origin: origin.to_string(),
            key,
        };
        if !self.keys.iter().any(|k| k.id() == new.id()) {
            self.keys.push(new);
        }
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
        self.insert(name, &pem, &path.display().to_string(), key);
        Ok(())
    }

    /// The first trusted key of that name.
    pub fn get(&self, name: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The key with that [`TrustedKey::id`] (what [`Keyring::verify`] returns).
    pub fn by_id(&self, id: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.id() == id)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.name.as_str())
    }

    /// Check `signed` (the compressed bytes of the stream after the signature stream): each
    /// signature against every trusted key of the name it gives; returns the
    /// [`TrustedKey::id`] of the first key that verifies one.
    pub fn verify(
        &self,
        signatures: &[Signature],
        signed: &[u8],
        what: &str,
    ) -> Result<String, SignatureError> {
        if signatures.is_empty() {
            return Err(SignatureError::Unsigned { what: what.into() });
        }
        let (sha1, sha256) = (Sha1::digest(signed), Sha256::digest(signed));
        let mut tried = Vec::new();
        for sig in signatures {
            for key in self.keys.iter().filter(|k| k.name == sig.key_name) {
                let ok = match sig.algo {
                    SigAlgo::Sha1 => key
                        .key
                        .verify(Pkcs1v15Sign::new::<Sha1>(), &sha1, &sig.bytes),
                    SigAlgo::Sha256 => {
                        key.key
                            .verify(Pkcs1v15Sign::new::<Sha256>(), &sha256, &sig.bytes)
                    }
                };
                if ok.is_ok() {
                    return Ok(key.id());
                }
                tried.push(key.describe());
            }
        }
        let keys = signatures.iter().map(|s| s.key_name.clone()).collect();
        if tried.is_empty() {
            Err(SignatureError::UnknownKey {
                what: what.into(),
                keys,
            })
        } else {
            Err(SignatureError::Untrusted {
                what: what.into(),
                keys,
                tried,
            })
        }
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
