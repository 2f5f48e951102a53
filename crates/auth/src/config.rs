//! What the authorization server needs to know, already validated.

use secrecy::SecretString;
use std::collections::BTreeMap;
use url::Url;

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl TokenAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAuthMethod::None => "none",
            TokenAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }
}

/// A client pre-registered in configuration.
#[derive(Clone)]
pub struct StaticClient {
    pub client_id: String,
    /// Present for confidential clients.
    pub client_secret: Option<SecretString>,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub auth_method: TokenAuthMethod,
}

impl std::fmt::Debug for StaticClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticClient")
            .field("client_id", &self.client_id)
            .field("confidential", &self.client_secret.is_some())
            .field("redirect_uris", &self.redirect_uris)
            .field("auth_method", &self.auth_method)
            .finish()
    }
}

/// Configuration of the authorization server and resource guard.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Issuer identifier: the bare origin, no trailing slash.
    pub issuer: String,
    /// The protected resource: the exact MCP endpoint URL.
    pub resource: String,
    /// Scopes this AS grants (never includes `offline_access`, which is
    /// accepted and handled separately).
    pub scopes: Vec<String>,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub code_ttl: i64,
    pub pending_ttl: i64,
    /// Lifetime of an RFC 8628 device authorization (user code and device code).
    pub device_code_ttl: i64,
    /// Seconds a device client waits between polls of the token endpoint.
    pub device_poll_interval: i64,
    /// Parallel refreshes within this many seconds of a rotation receive the
    /// same successor instead of tripping reuse detection.
    pub refresh_grace: i64,
    pub registration_enabled: bool,
    /// Maximum dynamic registrations per hour and client address (per /64
    /// for IPv6), enforced by whatever serves the endpoint (xmcp-server's
    /// rate limits).
    pub registration_limit_per_hour: i64,
    /// A dynamic registration never used for a token is deleted after this.
    pub unused_client_ttl: i64,
    pub cimd_enabled: bool,
    /// Allow fetching client metadata documents from http loopback URLs
    /// (tests and local development only; never in production).
    pub cimd_allow_loopback: bool,
    pub static_clients: Vec<StaticClient>,
    /// Clients (static) allowed to call `/introspect`.
    pub introspection_clients: Vec<String>,
    /// Issue RFC 9068 JWT access tokens instead of opaque ones.
    pub jwt_access_tokens: bool,
    /// Path of the callback an upstream identity provider redirects back to
    /// (the callback URL registered with X's app is the issuer plus this).
    pub upstream_callback_path: String,
    /// Which private-use redirect URI schemes registrations may use.
    pub redirect_schemes: crate::redirect::SchemePolicy,
    /// Lines the consent page shows every user (a daily spending cap).
    pub consent_notes: Vec<String>,
    /// What each scope allows, in the words the consent page shows; a
    /// scope not here is shown by its name alone.
    pub scope_words: BTreeMap<String, String>,
    /// What the consent page asks access to ("Allow … to use the X API as
    /// you?").
    pub service_name: String,
    /// The protected resource's name in its metadata (RFC 9728
    /// `resource_name`).
    pub resource_name: String,
}

impl AuthConfig {
    /// What an authorization request that names no scope is granted when
    /// its client registered none: the reading scopes (`*.read`) this
    /// server supports, or every scope if it supports no reading scope.
    pub fn default_scope(&self) -> String {
        let reading: Vec<&str> = self
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| s.ends_with(".read"))
            .collect();
        if reading.is_empty() {
            self.scopes.join(" ")
        } else {
            reading.join(" ")
        }
    }

    /// Defaults for a server reachable at `public_url` that grants
    /// `scopes`.
    pub fn new(public_url: &Url, scopes: Vec<String>) -> Self {
        let issuer = public_url.origin().ascii_serialization();
        Self {
            resource: format!("{issuer}/mcp"),
            issuer,
            scopes,
            access_token_ttl: 3600,
            refresh_token_ttl: 30 * 86_400,
            code_ttl: 60,
            pending_ttl: 600,
            device_code_ttl: 600,
            device_poll_interval: 5,
            refresh_grace: 30,
            registration_enabled: true,
            registration_limit_per_hour: 120,
            unused_client_ttl: 86_400,
            cimd_enabled: true,
            cimd_allow_loopback: false,
            static_clients: Vec::new(),
            introspection_clients: Vec::new(),
            jwt_access_tokens: false,
            upstream_callback_path: "/upstream/callback".into(),
            redirect_schemes: crate::redirect::SchemePolicy::default(),
            consent_notes: Vec::new(),
            scope_words: BTreeMap::new(),
            service_name: "this server".into(),
            resource_name: "MCP server".into(),
        }
    }

    /// The full URL of the upstream callback.
    pub fn upstream_callback_url(&self) -> String {
        format!("{}{}", self.issuer, self.upstream_callback_path)
    }

    /// Whether the issuer is served over https (cookies then use `__Host-`).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// Resource identifiers this server answers to: the MCP endpoint, and the
    /// bare origin (what the root protected-resource document names).
    pub fn accepts_resource(&self, resource: &str) -> bool {
        resource == self.resource || resource == self.issuer
    }
}
