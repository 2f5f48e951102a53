//! Upstream identity providers: who signs users in when it is not this
//! server, and the tokens they leave behind.
//!
//! An upstream implements [`IdentityProvider`](crate::identity::IdentityProvider):
//! `begin` sends the browser to it, `complete` turns its callback into a
//! user and, if the upstream's API is to be called on the user's behalf,
//! credentials to keep. Those credentials are kept by the [`Vault`]:
//! sealed at rest and bound to their row, opened on demand, renewed before
//! expiry through the provider's `refresh`, once per user across every
//! instance.
//!
//! Each upstream has its own place: [`oidc`] here (any OpenID Connect
//! provider; it keeps no tokens), X in the `xmcp-x` crate beside X's API
//! client. A new upstream is one more module (or crate) like them, one
//! configuration section, and one arm where the server chooses its
//! upstream (`App::build` in `crates/server/src/app.rs`).

pub mod oidc;
pub mod vault;

pub use vault::{UpstreamAccess, Vault, VaultError};

use secrecy::SecretString;

/// Tokens an upstream issued, only ever in memory.
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// Seconds the access token lives, if the upstream said.
    pub expires_in: Option<i64>,
    /// Space-separated scopes granted (possibly fewer than requested).
    pub scope: String,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why an upstream did not renew a user's tokens.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// The upstream answered and refused the refresh token (`invalid_grant`
    /// and the like): only a new sign-in helps.
    #[error("refused (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// Network failure, timeout, 5xx or 429: worth retrying later.
    #[error("{0}")]
    Transient(String),
}
