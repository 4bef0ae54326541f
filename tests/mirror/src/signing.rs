//! The mirror's RSA key: generated once, stored beside the mirror, named the way abuild names
//! keys, and used for RSA PKCS#1 v1.5 signatures as apk-tools verifies them.

use crate::tarball::{gzip, TarWriter};
use anyhow::{bail, Context, Result};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// Alpine's own keys are 4096-bit RSA.
pub const KEY_BITS: usize = 4096;
const KEY_PREFIX: &str = "edgeimg-mirror-";

pub struct Signer {
    key: RsaPrivateKey,
    /// The public key file name, e.g. `edgeimg-mirror-1a2b3c4d.rsa.pub`; signature members
    /// name it so apk-tools can find the key in its keys directory.
    pub key_name: String,
    pub public_key_path: PathBuf,
    pub private_key_path: PathBuf,
}

impl Signer {
    /// Loads the key from `<mirror>/private/`, or generates one, and (re)writes the public key
    /// to `<mirror>/keys/<key_name>`.
    pub fn load_or_create(mirror: &Path) -> Result<Signer> {
        let private_dir = mirror.join("private");
        let key = match find_private_key(&private_dir)? {
            Some(path) => {
                let pem = fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                RsaPrivateKey::from_pkcs1_pem(&pem).with_context(|| {
                    format!(
                        "{} is not a PKCS#1 PEM RSA key; delete it to generate a new one",
                        path.display()
                    )
                })?
            }
            None => generate(&private_dir)?,
        };
        let public_der = key.to_public_key().to_public_key_der()?;
        let id = hex::encode(&Sha256::digest(public_der.as_bytes())[..4]);
        let key_name = format!("{KEY_PREFIX}{id}.rsa.pub");
        let private_key_path = private_dir.join(format!("{KEY_PREFIX}{id}.rsa"));
        if !private_key_path.is_file() {
            write_private(&key, &private_key_path)?;
        }
        let keys_dir = mirror.join("keys");
        fs::create_dir_all(&keys_dir)
            .with_context(|| format!("creating {}", keys_dir.display()))?;
        let public_key_path = keys_dir.join(&key_name);
        let pem = key.to_public_key().to_public_key_pem(LineEnding::LF)?;
        if fs::read_to_string(&public_key_path).ok().as_deref() != Some(pem.as_str()) {
            fs::write(&public_key_path, pem)
                .with_context(|| format!("writing {}", public_key_path.display()))?;
        }
        Ok(Signer {
            key,
            key_name,
            public_key_path,
            private_key_path,
        })
    }

    /// The tar member name of a signature over some stream, `.SIGN.RSA256.<key_name>`.
    pub fn signature_member(&self) -> String {
        format!(".SIGN.RSA256.{}", self.key_name)
    }

    /// RSA PKCS#1 v1.5 signature over the SHA-256 digest of `data`.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        let digest = Sha256::digest(data);
        self.key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
            .context("RSA signing failed")
    }

    /// The signature stream that goes in front of `signed` (a control stream or an index).
    pub fn signature_stream(&self, signed: &[u8], mtime: u64) -> Result<Vec<u8>> {
        signature_stream(&self.signature_member(), &self.sign(signed)?, mtime)
    }
}

/// The first gzip member of a signed `.apk` or `APKINDEX.tar.gz`: a cut tar holding one
/// `member` (`.SIGN.RSA.<key>` or `.SIGN.RSA256.<key>`) whose content is `signature`.
pub fn signature_stream(member: &str, signature: &[u8], mtime: u64) -> Result<Vec<u8>> {
    let mut tar = TarWriter::new(Vec::new(), mtime);
    tar.file(member, 0o644, 0, 0, signature.len() as u64, signature)?;
    gzip(&tar.finish_cut()?)
}

fn find_private_key(dir: &Path) -> Result<Option<PathBuf>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with(KEY_PREFIX) && name.ends_with(".rsa")
        })
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => bail!(
            "{} holds several mirror keys ({found:?}); keep one",
            dir.display()
        ),
    }
}

fn generate(private_dir: &Path) -> Result<RsaPrivateKey> {
    fs::create_dir_all(private_dir)
        .with_context(|| format!("creating {}", private_dir.display()))?;
    RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS).context("generating the mirror's RSA key")
}

fn write_private(key: &RsaPrivateKey, path: &Path) -> Result<()> {
    let pem = key.to_pkcs1_pem(LineEnding::LF)?;
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, pem.as_bytes()).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
