//! The authorization server's protocol logic, independent of any HTTP
//! framework: each endpoint takes parsed inputs and returns an outcome that
//! the routes (or another framework) turn into a response.
//!
//! [`AuthServer`] and what its endpoints share are here; each endpoint or
//! grant is a file of its own, adding to the same `impl AuthServer`:
//! `registration` (clients and `/register`), `authorize`, `consent`,
//! `upstream` (the identity provider's callback), `token` (client
//! authentication and the grant dispatch), `code_grant`, `refresh`,
//! `device`, `revoke` (and introspection), `bearer` (the resource
//! side) and `metadata`.

use crate::cimd::{self, CimdResolver};
use crate::client::{Client, ClientKind, ClientMetadata, GrantType};
use crate::clock::Clock;
use crate::config::{AuthConfig, TokenAuthMethod};
use crate::error::{ErrorCode, GuardError, OAuthError};
use crate::html::{ConsentView, ErrorView};
use crate::identity::{IdentityProvider, LoginContext, LoginForm, LoginStep, UpstreamError};
use crate::params::Params;
use crate::principal::Principal;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::{info, instrument, warn};
use url::Url;
use xmcp_crypto::envelope::Keyring;
use xmcp_crypto::signer::Signer;
use xmcp_crypto::token::{NewToken, TokenHash, TokenKind};
use xmcp_store::*;

mod authorize;
mod bearer;
mod code_grant;
mod consent;
mod device;
mod metadata;
mod refresh;
mod registration;
mod revoke;
mod token;
mod upstream;

pub use device::DeviceAuthorizationResponse;

/// The authorization server and resource guard.
pub struct AuthServer {
    pub config: AuthConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    idp: Arc<dyn IdentityProvider>,
    keyring: Arc<Keyring>,
    cookies: Signer,
    cimd: CimdResolver,
    jwt: Option<Arc<crate::jwt::JwtKeys>>,
    /// Resource-server-only mode: tokens come from this external issuer.
    external: Option<Arc<crate::external::ExternalVerifier>>,
    /// Narrower protected resources under the base resource.
    sub_resources: Option<Arc<dyn crate::resource::SubResources>>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// A browser cookie to set or clear.
#[derive(Debug, Clone, PartialEq)]
pub struct Cookie {
    pub name: String,
    /// `None` clears the cookie.
    pub value: Option<String>,
    pub max_age: i64,
    pub secure: bool,
}

/// What an HTML endpoint (`/authorize`, `/consent`) answers.
#[derive(Debug)]
pub enum PageOutcome {
    /// An error the user sees; never a redirect (unknown client, bad redirect).
    Error(ErrorView),
    /// Redirect the browser (302 after GET, 303 after POST).
    Redirect {
        location: String,
        cookies: Vec<Cookie>,
    },
    /// Show the consent page.
    Consent {
        view: Box<ConsentView>,
        cookies: Vec<Cookie>,
    },
    /// A page that ends a flow with no redirect (a device authorization
    /// approved or denied); its status is the view's.
    Notice {
        view: ErrorView,
        cookies: Vec<Cookie>,
    },
}

impl PageOutcome {
    fn with_cookie(mut self, cookie: Cookie) -> Self {
        match &mut self {
            PageOutcome::Redirect { cookies, .. }
            | PageOutcome::Consent { cookies, .. }
            | PageOutcome::Notice { cookies, .. } => cookies.push(cookie),
            PageOutcome::Error(_) => {}
        }
        self
    }
}

/// The token endpoint's success body (RFC 6749 §5.1).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Client credentials as presented at the token, revocation or introspection
/// endpoint.
#[derive(Default)]
pub struct ClientCredentials {
    /// Decoded `Authorization: Basic` credentials, if that header was sent.
    pub basic: Option<(String, String)>,
}

/// Longest value of an authorization request's parameters, beyond those
/// [`AUTHORIZE_LIMITS`] names: a pending authorization is stored before
/// anyone signed in, so its size is bounded.
pub(crate) const MAX_PARAMETER: usize = 2048;

/// Limits of particular authorization parameters, in bytes.
pub(crate) const AUTHORIZE_LIMITS: &[(&str, usize)] = &[
    ("state", 1024),
    ("scope", 1024),
    ("code_challenge", 128),
    ("code_challenge_method", 16),
    ("response_type", 32),
    ("nonce", 256),
];

impl AuthServer {
    pub fn new(
        config: AuthConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        idp: Arc<dyn IdentityProvider>,
        keyring: Arc<Keyring>,
        cookie_key: &[u8],
    ) -> Self {
        let cimd = CimdResolver::new(config.cimd_allow_loopback)
            .with_schemes(config.redirect_schemes.clone());
        Self {
            config,
            store,
            clock,
            idp,
            keyring,
            cookies: Signer::derive(cookie_key, "xmcp consent cookie v1"),
            cimd,
            jwt: None,
            external: None,
            sub_resources: None,
        }
    }

    /// Also answer for narrower resources under the base resource (see
    /// [`crate::resource`]).
    pub fn with_sub_resources(mut self, sub: Arc<dyn crate::resource::SubResources>) -> Self {
        self.sub_resources = Some(sub);
        self
    }

    /// Issue JWT access tokens signed with these keys (and verify them).
    pub fn with_jwt_keys(mut self, keys: Arc<crate::jwt::JwtKeys>) -> Self {
        self.jwt = Some(keys);
        self
    }

    /// Verify tokens of an external authorization server instead of issuing
    /// our own: the server becomes a resource guard only (its router mounts
    /// no authorization endpoints).
    pub fn with_external(mut self, verifier: Arc<crate::external::ExternalVerifier>) -> Self {
        self.external = Some(verifier);
        self
    }

    /// Whether this is a resource guard for an external issuer only.
    pub fn is_resource_server_only(&self) -> bool {
        self.external.is_some()
    }

    pub fn jwt_keys(&self) -> Option<&Arc<crate::jwt::JwtKeys>> {
        self.jwt.as_ref()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.config.issuer, path)
    }

    /// URL of the protected-resource metadata for the MCP endpoint.
    pub fn resource_metadata_url(&self) -> String {
        self.resource_metadata_url_for(&self.config.resource)
    }

    /// URL of the protected-resource metadata for `resource` (RFC 9728
    /// §3.1: the well-known path inserted between origin and path).
    pub fn resource_metadata_url_for(&self, resource: &str) -> String {
        let path = Url::parse(resource)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        format!(
            "{}/.well-known/oauth-protected-resource{}",
            self.config.issuer,
            path.trim_end_matches('/')
        )
    }

    /// Where `resource` stands under the base resource: `Some("")` for the
    /// base resource itself (or the bare origin), `Some(suffix)` for a
    /// narrower resource this server answers for, `None` otherwise.
    pub fn resource_suffix<'a>(&self, resource: &'a str) -> Option<&'a str> {
        if self.config.accepts_resource(resource) {
            return Some("");
        }
        let suffix = resource.strip_prefix(self.config.resource.as_str())?;
        let sub = self.sub_resources.as_ref()?;
        (suffix.starts_with('/') && sub.scopes_supported(suffix).is_some()).then_some(suffix)
    }

    /// Whether `resource` is one this server answers for.
    pub fn accepts_resource(&self, resource: &str) -> bool {
        self.resource_suffix(resource).is_some()
    }

    /// The resource a request to `path` on this server is for, if any: the
    /// base resource's path, or a narrower resource's.
    pub fn resource_at_path(&self, path: &str) -> Option<String> {
        let resource = format!("{}{path}", self.config.issuer);
        let is_resource = resource == self.config.resource
            || self
                .resource_suffix(&resource)
                .is_some_and(|s| !s.is_empty());
        is_resource.then_some(resource)
    }

    // ----- clients -------------------------------------------------------

    fn redirect_with(&self, redirect_uri: &str, params: &[(&str, &str)]) -> String {
        match Url::parse(redirect_uri) {
            Ok(mut u) => {
                {
                    let mut q = u.query_pairs_mut();
                    for (k, v) in params {
                        q.append_pair(k, v);
                    }
                    q.append_pair("iss", &self.config.issuer);
                }
                u.to_string()
            }
            Err(_) => redirect_uri.to_owned(),
        }
    }

    fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        err: ErrorCode,
        desc: &str,
    ) -> PageOutcome {
        let mut params = vec![("error", err.as_str()), ("error_description", desc)];
        if let Some(s) = state {
            params.push(("state", s));
        }
        PageOutcome::Redirect {
            location: self.redirect_with(redirect_uri, &params),
            cookies: vec![],
        }
    }

    /// Delete expired rows.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        self.store.sweep(self.now()).await
    }
}

/// RFC 8707 §2.2: a `resource` in a token request must be the one the grant
/// was authorized for. Narrowing is not offered here: a client wanting a
/// narrower resource asks for it at `/authorize`.
fn check_token_resource(form: &Params, granted: &str) -> Result<(), OAuthError> {
    let requested = form.all("resource");
    if requested.len() > 1 || requested.first().is_some_and(|r| r != granted) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource does not match the authorized resource {granted}"),
        ));
    }
    Ok(())
}

/// What a JWT access token says about its grant.
#[derive(Clone, Copy)]
pub(crate) struct GrantFacts<'a> {
    user_id: &'a str,
    scope: &'a str,
    resource: &'a str,
}

fn pending_aad(handle: &TokenHash) -> String {
    SealedColumn::PendingVerifier.aad(handle.as_str())
}
