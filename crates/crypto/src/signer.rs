//! HMAC-SHA256 signatures over short strings, used for browser cookies.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use std::fmt;

/// Signs and verifies `value.signature` strings with a server-side key.
pub struct Signer {
    key: SecretBox<[u8; 32]>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: SecretBox::new(Box::new(key)),
        }
    }

    /// Derive a purpose-specific signer from master key material, so one
    /// configured secret can serve several uses without cross-protocol reuse.
    pub fn derive(master: &[u8], purpose: &str) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(purpose.as_bytes());
        Self::new(mac.finalize().into_bytes().into())
    }

    fn mac(&self, value: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(value.as_bytes());
        mac
    }

    /// `value.<base64url mac>`; `value` must not contain `.`-free assumptions:
    /// the signature is always the part after the last dot.
    pub fn sign(&self, value: &str) -> String {
        let tag = self.mac(value).finalize().into_bytes();
        format!("{value}.{}", crate::b64url(&tag))
    }

    /// Returns the value if the signature is valid.
    pub fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (value, tag) = signed.rsplit_once('.')?;
        let expected = crate::b64url(&self.mac(value).finalize().into_bytes());
        crate::constant_time_eq(expected.as_bytes(), tag.as_bytes()).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify() {
        let s = Signer::derive(b"master", "cookie");
        let signed = s.sign("user-1.client-2");
        assert_eq!(s.verify(&signed), Some("user-1.client-2"));
        assert_eq!(s.verify("user-1.client-2.forged"), None);
        assert_eq!(Signer::derive(b"master", "other").verify(&signed), None);
    }
}
