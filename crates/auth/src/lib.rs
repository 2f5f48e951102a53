//! A reusable OAuth 2.1 authorization server and resource-server guard for
//! MCP servers, as xmcp uses it.
//!
//! * [`AuthServer`] holds the protocol logic (authorize, consent, token,
//!   revoke, introspect, register, metadata, bearer validation) and is free of
//!   any HTTP framework.
//! * [`routes`] (feature `axum`, on by default) mounts it: [`routes::router`]
//!   for the endpoints and [`routes::require_bearer`] as middleware in front of
//!   the MCP endpoint, which puts a [`Principal`] into request extensions
//!   ([`routes::authenticate`] does the same inside a middleware of one's own
//!   that checks more, as xmcp's scope check does).
//! * Storage comes from `xmcp-store`; users come from an
//!   [`identity::IdentityProvider`] (local accounts here; X or OIDC
//!   [`upstream`]), whose tokens, if kept, the [`upstream::Vault`] keeps.

pub mod cimd;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod external;
pub mod html;
pub mod identity;
pub mod jwt;
pub mod params;
pub mod principal;
pub mod redirect;
pub mod registration;
pub mod resource;
#[cfg(feature = "axum")]
pub mod routes;
pub mod server;
pub mod upstream;

/// OpenID Connect sign-in, at its old path.
pub use upstream::oidc;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{AuthConfig, StaticClient, TokenAuthMethod};
pub use error::{ErrorCode, OAuthError};
pub use principal::Principal;
pub use server::{AuthServer, TokenResponse};
