//! Issued tokens: a recognisable prefix, 256 bits of randomness, and a SHA-256
//! digest that is the only thing ever stored.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// The kinds of secret strings the authorization server hands out. The prefix
/// makes leaked tokens easy to recognise (and to scan for) without revealing
/// anything about them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    AccessToken,
    RefreshToken,
    AuthorizationCode,
    ClientSecret,
    /// Opaque handle for a pending authorization kept in the store.
    PendingAuthorization,
    /// CSRF tokens on the consent page.
    Csrf,
    /// RFC 8628 device codes.
    DeviceCode,
}

impl TokenKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            TokenKind::AccessToken => "xmcp_at_",
            TokenKind::RefreshToken => "xmcp_rt_",
            TokenKind::AuthorizationCode => "xmcp_ac_",
            TokenKind::ClientSecret => "xmcp_cs_",
            TokenKind::PendingAuthorization => "xmcp_pa_",
            TokenKind::Csrf => "xmcp_csrf_",
            TokenKind::DeviceCode => "xmcp_dc_",
        }
    }
}

/// A freshly generated secret and its storage digest. `Debug` never shows the
/// secret.
pub struct NewToken {
    plaintext: SecretString,
    hash: TokenHash,
}

impl NewToken {
    pub fn generate(kind: TokenKind) -> Self {
        let body = crate::b64url(&crate::random_bytes::<32>());
        let plaintext = format!("{}{}", kind.prefix(), body);
        let hash = TokenHash::of(&plaintext);
        Self {
            plaintext: SecretString::from(plaintext),
            hash,
        }
    }

    /// Wrap a secret minted elsewhere (a signed JWT access token) so it is
    /// handled, hashed and redacted like our random tokens.
    pub fn from_plaintext(plaintext: String) -> Self {
        let hash = TokenHash::of(&plaintext);
        Self {
            plaintext: SecretString::from(plaintext),
            hash,
        }
    }

    /// The token to hand to the client, exactly once.
    pub fn plaintext(&self) -> &str {
        self.plaintext.expose_secret()
    }

    pub fn hash(&self) -> &TokenHash {
        &self.hash
    }

    pub fn into_parts(self) -> (SecretString, TokenHash) {
        (self.plaintext, self.hash)
    }
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Hex-encoded SHA-256 of a token: what the store keeps and looks tokens up by.
/// Looking up by digest means the comparison the database does is on a value an
/// attacker cannot choose byte by byte, so it leaks nothing useful.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(hex::encode(crate::sha256(token.as_bytes())))
    }

    /// Wrap a digest read back from the store.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not a secret, but a short form keeps logs readable.
        write!(f, "TokenHash({}…)", &self.0[..self.0.len().min(8)])
    }
}

/// Which kind a presented token claims to be, judged by its prefix only.
pub fn kind_of(token: &str) -> Option<TokenKind> {
    [
        TokenKind::AccessToken,
        TokenKind::RefreshToken,
        TokenKind::AuthorizationCode,
        TokenKind::ClientSecret,
        TokenKind::PendingAuthorization,
        TokenKind::Csrf,
        TokenKind::DeviceCode,
    ]
    .into_iter()
    .find(|k| token.starts_with(k.prefix()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_unique_and_hashed() {
        let a = NewToken::generate(TokenKind::AccessToken);
        let b = NewToken::generate(TokenKind::AccessToken);
        assert!(a.plaintext().starts_with("xmcp_at_"));
        assert_ne!(a.plaintext(), b.plaintext());
        assert_eq!(a.plaintext().len(), "xmcp_at_".len() + 43);
        assert_eq!(TokenHash::of(a.plaintext()), *a.hash());
        assert_eq!(kind_of(a.plaintext()), Some(TokenKind::AccessToken));
        assert!(!format!("{a:?}").contains(a.plaintext()));
    }
}
