//! Signed models: ed25519ph (the Ed25519 signature of the file's SHA-512, RFC 8032) with a
//! context string, so the server checks an upload as it streams in, and `edgeimg sign-model`
//! signs exactly what the server checks. Keys and signatures travel as base64 text.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
pub use sha2::{Digest, Sha512};

/// Binds a signature to this use: one made for something else does not verify here.
pub const CONTEXT: &[u8] = b"edgeimg-model-v1";

/// The context of a system update's signed manifest (`update.json.sig`): a model signature
/// never verifies as an update's, nor the other way round.
pub const SYSTEM_UPDATE_CONTEXT: &[u8] = b"edgeimg-system-update-v1";

/// The header an upload carries its signature in.
pub const HEADER: &str = "x-edgeimg-signature";

/// A new key pair: (secret key text, public key text), each base64 of 32 bytes.
pub fn generate() -> (String, String) {
    let key = SigningKey::generate(&mut rand_core::OsRng);
    (
        STANDARD.encode(key.to_bytes()),
        STANDARD.encode(key.verifying_key().to_bytes()),
    )
}

fn key_bytes(text: &str) -> Result<[u8; 32], String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("is not base64 ({e})"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("holds {} bytes, an ed25519 key has 32", b.len()))
}

/// A public key file's text: base64 of its 32 bytes.
pub fn public_key_text(key: &VerifyingKey) -> String {
    STANDARD.encode(key.to_bytes())
}

/// Reads a public key file's text.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_bytes(&key_bytes(text)?)
        .map_err(|e| format!("is not an ed25519 public key ({e})"))
}

/// Reads a secret key file's text.
pub fn parse_secret_key(text: &str) -> Result<SigningKey, String> {
    Ok(SigningKey::from_bytes(&key_bytes(text)?))
}

/// Reads a signature: base64 of its 64 bytes.
pub fn parse_signature(text: &str) -> Result<Signature, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the signature is not base64 ({e})"))?;
    Signature::from_slice(&bytes).map_err(|_| {
        format!(
            "the signature holds {} bytes, an ed25519 one has 64",
            bytes.len()
        )
    })
}

/// The signature of the model file whose SHA-512 state is `digest`, as base64 text.
pub fn sign(key: &SigningKey, digest: Sha512) -> String {
    sign_for(CONTEXT, key, digest)
}

/// Whether `signature` signs the model file whose SHA-512 state is `digest`.
pub fn verify(key: &VerifyingKey, digest: Sha512, signature: &Signature) -> bool {
    verify_for(CONTEXT, key, digest, signature)
}

/// The signature, for the use `context` names, of the bytes whose SHA-512 state is `digest`.
pub fn sign_for(context: &[u8], key: &SigningKey, digest: Sha512) -> String {
    let signature = key
        .sign_prehashed(digest, Some(context))
        .expect("the context is shorter than 256 bytes");
    STANDARD.encode(signature.to_bytes())
}

/// Whether `signature` signs, for the use `context` names, the bytes whose SHA-512 state is
/// `digest`.
pub fn verify_for(
    context: &[u8],
    key: &VerifyingKey,
    digest: Sha512,
    signature: &Signature,
) -> bool {
    key.verify_prehashed(digest, Some(context), signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> Sha512 {
        let mut d = Sha512::new();
        d.update(bytes);
        d
    }

    #[test]
    fn a_signature_verifies_its_file_and_key_only() {
        let (secret, public) = generate();
        let key = parse_secret_key(&secret).unwrap();
        let public = parse_public_key(&public).unwrap();
        let signature = parse_signature(&sign(&key, digest(b"model"))).unwrap();
        assert!(verify(&public, digest(b"model"), &signature));
        assert!(!verify(&public, digest(b"modem"), &signature));
        let (_, other) = generate();
        assert!(!verify(
            &parse_public_key(&other).unwrap(),
            digest(b"model"),
            &signature
        ));
        assert!(parse_public_key("AAAA").unwrap_err().contains("3 bytes"));
        assert!(parse_signature("not base64!").is_err());
    }
}
