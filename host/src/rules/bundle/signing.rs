//! ed25519 signatures over a bundle's manifest (which holds every
//! component's digest). Keys travel as base64 of their 32 raw bytes; the
//! service trusts the public keys in `BUNDLE_PUBLIC_KEYS`
//! (`key-id:base64,...`) and, when any is configured, refuses unsigned
//! bundles and bundles signed by a key it does not know.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signature as Ed25519Signature, Signer, SigningKey, Verifier};

use super::{
    Refusal,
    format::{Bundle, Signature},
};
pub use crate::config::TrustedKeys;
use crate::config::decode_key;

/// A fresh key pair: (private, public), both base64.
pub fn generate() -> (String, String) {
    let seed: [u8; 32] = rand::random();
    let key = SigningKey::from_bytes(&seed);
    (
        STANDARD.encode(key.to_bytes()),
        STANDARD.encode(key.verifying_key().to_bytes()),
    )
}

pub fn sign(manifest_bytes: &[u8], private_key: &str, key_id: &str) -> Result<Signature, String> {
    let key = SigningKey::from_bytes(&decode_key(private_key, "private key")?);
    Ok(Signature {
        key_id: key_id.to_string(),
        signature: STANDARD.encode(key.sign(manifest_bytes).to_bytes()),
    })
}

/// The keys are parsed with the settings (`BUNDLE_PUBLIC_KEYS`); checking a
/// bundle against them is here, beside the bundle format.
impl TrustedKeys {
    /// `Ok(Some(key id))` when signed by a trusted key, `Ok(None)` when no
    /// keys are configured (signatures are then not checked), an error
    /// otherwise.
    pub fn verify(&self, bundle: &Bundle) -> Result<Option<String>, Refusal> {
        if self.is_empty() {
            return Ok(None);
        }
        let signature = bundle.signature.as_ref().ok_or_else(|| {
            Refusal::Signature("the bundle is not signed, and signatures are required".into())
        })?;
        let key = self.get(&signature.key_id).ok_or_else(|| {
            Refusal::Signature(format!("signed by an unknown key {:?}", signature.key_id))
        })?;
        let raw: [u8; 64] = STANDARD
            .decode(signature.signature.trim())
            .map_err(|e| Refusal::Signature(format!("signature: not base64 ({e})")))?
            .try_into()
            .map_err(|_| {
                Refusal::Signature("signature: an ed25519 signature is 64 bytes".into())
            })?;
        key.verify(&bundle.manifest_bytes, &Ed25519Signature::from_bytes(&raw))
            .map_err(|_| {
                Refusal::Signature(format!(
                    "the signature does not match (the manifest was changed after signing, or not signed with {:?})",
                    signature.key_id
                ))
            })?;
        Ok(Some(signature.key_id.clone()))
    }
}
