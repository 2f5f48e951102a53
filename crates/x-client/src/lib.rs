#![doc = include_str!("../README.md")]

pub mod api;
pub mod identity;
pub mod oauth;
pub mod scopes;
pub mod vault;

pub use api::{Caller, RateLimit, RateLimits, XApi, XApiConfig, XCallError, XRequest, XResponse};
pub use identity::XIdentityProvider;
pub use oauth::{CallError, TokenSet, XOAuth, XOAuthConfig, XUser};
pub use vault::{UpstreamAccess, Vault, VaultError};
