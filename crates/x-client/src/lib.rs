#![doc = include_str!("../README.md")]

pub mod api;
pub mod identity;
pub mod oauth;
pub mod scopes;

pub use api::{Caller, RateLimit, RateLimits, XApi, XApiConfig, XCallError, XRequest, XResponse};
pub use identity::XIdentityProvider;
pub use oauth::{CallError, TokenSet, XOAuth, XOAuthConfig, XUser};
pub use xmcp_auth::upstream::{UpstreamAccess, Vault, VaultError};
