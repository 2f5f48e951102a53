//! Cryptographic building blocks for xmcp.
//!
//! * [`token`]: prefixed random tokens (`xmcp_at_…`), their SHA-256 digests for
//!   storage, and constant-time comparison.
//! * [`envelope`]: AES-256-GCM sealing of upstream secrets with a key id and
//!   additional authenticated data binding each ciphertext to its row, plus a
//!   [`envelope::Keyring`] that can hold old keys for rotation.
//! * [`password`]: argon2 password hashing for the local identity provider.
//! * [`signer`]: HMAC-SHA256 signing of small values (browser cookies).
//!
//! Nothing here reads the clock or the environment; callers pass what they need.

pub mod envelope;
pub mod password;
pub mod signer;
pub mod token;

pub use secrecy::{ExposeSecret, SecretBox, SecretString};

/// Fill a fresh array with bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    // ThreadRng is a CSPRNG (ChaCha12) periodically reseeded from the OS.
    let mut out = [0u8; N];
    rand::rng().fill_bytes(&mut out);
    out
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Base64url without padding, as used in PKCE and tokens.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// A fresh RFC 7636 pair: a 43-character verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = b64url(&random_bytes::<32>());
    let challenge = b64url(&sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// Verify an RFC 7636 S256 code challenge against a verifier in constant time.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let computed = b64url(&sha256(verifier.as_bytes()));
    constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_appendix_b() {
        // RFC 7636 Appendix B test vector.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches("x", challenge));
        let (v, c) = pkce_pair();
        assert_eq!(v.len(), 43);
        assert!(pkce_s256_matches(&v, &c));
    }

    #[test]
    fn constant_time_eq_checks_length_and_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
