//! AES-256-GCM envelope for secrets kept at rest (upstream tokens).
//!
//! Sealed format (text, safe for any column type):
//! `v1.<key id>.<base64url(nonce || ciphertext+tag)>`.
//! The key id selects the key from a [`Keyring`], so old rows stay readable
//! after a rotation until `xmcp rotate-key` re-encrypts them. The caller's AAD
//! (for example `"upstream_token:" + user id`) is authenticated but not stored,
//! so a ciphertext copied to another row fails to open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::fmt;

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("no key with id {0:?} in the keyring")]
    UnknownKey(String),
    #[error("decryption failed: wrong key, wrong row, or tampered data")]
    Decrypt,
    #[error("key must be 32 bytes, base64 or hex encoded ({0})")]
    BadKey(&'static str),
    #[error("key id must be 1-32 characters of [A-Za-z0-9_-]")]
    BadKeyId,
}

/// One 256-bit data-encryption key and its id.
pub struct DataKey {
    id: String,
    key: SecretBox<[u8; 32]>,
}

impl DataKey {
    pub fn new(id: impl Into<String>, key: [u8; 32]) -> Result<Self, EnvelopeError> {
        let id = id.into();
        let valid_id = !id.is_empty()
            && id.len() <= 32
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_id {
            return Err(EnvelopeError::BadKeyId);
        }
        Ok(Self {
            id,
            key: SecretBox::new(Box::new(key)),
        })
    }

    /// Generate a random key with the given id.
    pub fn generate(id: impl Into<String>) -> Result<Self, EnvelopeError> {
        Self::new(id, crate::random_bytes::<32>())
    }

    /// Parse `"<id>:<base64 or hex key>"` or a bare key (id `"k1"`).
    pub fn parse(spec: &str) -> Result<Self, EnvelopeError> {
        let spec = spec.trim();
        let (id, material) = match spec.split_once(':') {
            Some((id, m)) => (id, m),
            None => ("k1", spec),
        };
        Self::new(id, decode_key(material)?)
    }

    /// The `"<id>:<base64url key>"` form accepted by [`DataKey::parse`].
    pub fn export(&self) -> SecretString {
        SecretString::from(format!(
            "{}:{}",
            self.id,
            crate::b64url(self.key.expose_secret())
        ))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.key.expose_secret().into())
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn decode_key(material: &str) -> Result<[u8; 32], EnvelopeError> {
    let material = material.trim();
    let bytes = if material.len() == 64 && material.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(material).map_err(|_| EnvelopeError::BadKey("invalid hex"))?
    } else {
        let engines = [
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
        ];
        let trimmed = material.trim_end_matches('=');
        engines
            .iter()
            .find_map(|e| e.decode(trimmed).ok())
            .ok_or(EnvelopeError::BadKey("invalid base64"))?
    };
    bytes
        .try_into()
        .map_err(|_| EnvelopeError::BadKey("wrong length"))
}

/// The active key (used to seal) plus older keys (only used to open).
#[derive(Debug)]
pub struct Keyring {
    active: DataKey,
    previous: Vec<DataKey>,
}

impl Keyring {
    pub fn new(active: DataKey, previous: Vec<DataKey>) -> Self {
        Self { active, previous }
    }

    pub fn active_id(&self) -> &str {
        self.active.id()
    }

    fn key(&self, id: &str) -> Option<&DataKey> {
        std::iter::once(&self.active)
            .chain(self.previous.iter())
            .find(|k| k.id == id)
    }

    /// A 256-bit key for another purpose, derived from the active key
    /// (HMAC-SHA256 over `purpose`), so one configured secret serves several
    /// uses without reusing key material across them.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.active.key.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Seal `plaintext` under the active key, binding it to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> String {
        let nonce_bytes = crate::random_bytes::<NONCE_LEN>();
        let nonce = Nonce::from(nonce_bytes);
        let ct = self
            .active
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // AES-GCM encryption fails only for inputs over ~64 GiB.
            .unwrap_or_default();
        let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ct);
        format!("{VERSION}.{}.{}", self.active.id, crate::b64url(&blob))
    }

    /// Open a value produced by [`Keyring::seal`] with the same `aad`.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<SecretBox<Vec<u8>>, EnvelopeError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(EnvelopeError::Malformed);
        };
        let key = self
            .key(kid)
            .ok_or_else(|| EnvelopeError::UnknownKey(kid.to_owned()))?;
        let blob = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| EnvelopeError::Malformed)?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(EnvelopeError::Malformed);
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| EnvelopeError::Malformed)?;
        let pt = key
            .cipher()
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
            .map_err(|_| EnvelopeError::Decrypt)?;
        Ok(SecretBox::new(Box::new(pt)))
    }

    /// The key id a sealed value was written with, without opening it.
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        let mut parts = sealed.splitn(3, '.');
        match (parts.next(), parts.next()) {
            (Some(VERSION), Some(kid)) => Some(kid),
            _ => None,
        }
    }

    /// Re-seal under the active key (for key rotation). Returns `None` when the
    /// value is already sealed with the active key.
    pub fn reseal(&self, sealed: &str, aad: &[u8]) -> Result<Option<String>, EnvelopeError> {
        if Self::key_id_of(sealed) == Some(self.active.id()) {
            return Ok(None);
        }
        let pt = self.open(sealed, aad)?;
        Ok(Some(self.seal(pt.expose_secret(), aad)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(DataKey::generate("k2").unwrap(), vec![])
    }

    #[test]
    fn round_trip_and_aad_binding() {
        let r = ring();
        let sealed = r.seal(b"secret-refresh-token", b"user:1");
        assert!(sealed.starts_with("v1.k2."));
        assert!(!sealed.contains("secret"));
        let pt = r.open(&sealed, b"user:1").unwrap();
        assert_eq!(pt.expose_secret().as_slice(), b"secret-refresh-token");
        assert_eq!(
            r.open(&sealed, b"user:2").unwrap_err(),
            EnvelopeError::Decrypt
        );
    }

    #[test]
    fn tampering_and_wrong_key_fail() {
        let r = ring();
        let mut sealed = r.seal(b"x", b"a");
        let last = sealed.pop().unwrap();
        sealed.push(if last == 'A' { 'B' } else { 'A' });
        assert!(r.open(&sealed, b"a").is_err());
        let other = Keyring::new(DataKey::generate("k2").unwrap(), vec![]);
        let s2 = r.seal(b"x", b"a");
        assert_eq!(other.open(&s2, b"a").unwrap_err(), EnvelopeError::Decrypt);
        assert_eq!(
            r.open("garbage", b"a").unwrap_err(),
            EnvelopeError::Malformed
        );
    }

    #[test]
    fn rotation_reseals_under_active_key() {
        let old = DataKey::generate("old").unwrap();
        let old_ring = Keyring::new(
            DataKey::parse(old.export().expose_secret()).unwrap(),
            vec![],
        );
        let sealed = old_ring.seal(b"tok", b"row");
        let new_ring = Keyring::new(DataKey::generate("new").unwrap(), vec![old]);
        let resealed = new_ring.reseal(&sealed, b"row").unwrap().unwrap();
        assert_eq!(Keyring::key_id_of(&resealed), Some("new"));
        assert!(new_ring.reseal(&resealed, b"row").unwrap().is_none());
        assert_eq!(
            new_ring
                .open(&resealed, b"row")
                .unwrap()
                .expose_secret()
                .as_slice(),
            b"tok"
        );
    }

    #[test]
    fn derived_keys_depend_on_purpose_and_key() {
        let r = ring();
        assert_eq!(r.derive("a"), r.derive("a"));
        assert_ne!(r.derive("a"), r.derive("b"));
        assert_ne!(r.derive("a"), ring().derive("a"));
    }

    #[test]
    fn key_parsing() {
        let hex_key = "00".repeat(32);
        assert_eq!(DataKey::parse(&hex_key).unwrap().id(), "k1");
        assert_eq!(
            DataKey::parse(&format!("abc:{hex_key}")).unwrap().id(),
            "abc"
        );
        assert!(DataKey::parse("short").is_err());
        assert!(DataKey::parse(&format!("bad id:{hex_key}")).is_err());
        let k = DataKey::generate("z").unwrap();
        assert!(!format!("{k:?}").contains(k.export().expose_secret()));
    }
}
