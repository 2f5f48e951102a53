//! Every setting as one layer gives it (the TOML file, or the flags and
//! environment variables), and how layers combine.

use super::*;

/// Every setting, each optional, as read from one layer. No `Debug`: it
/// holds secrets and a database URL that may carry a password.
#[derive(Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub host: Option<IpAddr>,
    pub port: Option<u16>,
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub database_max_connections: Option<u32>,
    pub demo: Option<bool>,
    /// Let `demo` listen on, or be published at, a non-loopback address.
    pub demo_public: Option<bool>,
    pub log_format: Option<LogFormat>,
    pub log: Option<String>,
    pub mcp_stateful: Option<bool>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Option<Vec<String>>,
    #[serde(skip)]
    pub encryption_key: Option<SecretString>,
    pub encryption_key_file: Option<PathBuf>,
    #[serde(skip)]
    pub previous_encryption_keys: Option<SecretString>,
    pub previous_encryption_keys_file: Option<PathBuf>,
    pub scopes: Option<Vec<String>>,
    pub access_token_ttl: Option<i64>,
    /// `opaque` (default) or `jwt` (RFC 9068, RS256, keys in the store).
    pub access_token_format: Option<String>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_grace: Option<i64>,
    pub registration_enabled: Option<bool>,
    pub registration_limit_per_hour: Option<i64>,
    pub unused_client_ttl: Option<i64>,
    pub cimd_enabled: Option<bool>,
    pub cimd_allow_loopback: Option<bool>,
    /// Private-use redirect URI schemes of native clients that
    /// registrations may use, besides reverse-domain ones.
    pub redirect_schemes: Option<Vec<String>>,
    pub sweep_interval: Option<u64>,
    pub shutdown_timeout: Option<u64>,
    #[serde(default)]
    pub clients: Vec<ClientSettings>,
    #[serde(default)]
    pub users: Vec<UserSettings>,
    pub introspection_clients: Option<Vec<String>>,
    /// X app's client id: setting it makes X the identity provider.
    pub x_client_id: Option<String>,
    #[serde(skip)]
    pub x_client_secret: Option<SecretString>,
    pub x_client_secret_file: Option<PathBuf>,
    /// Scopes always requested from X (must include `offline.access`).
    pub x_scopes: Option<Vec<String>>,
    pub x_authorize_url: Option<String>,
    pub x_token_url: Option<String>,
    pub x_revoke_url: Option<String>,
    pub x_api_url: Option<String>,
    /// Refresh X tokens this many seconds before they expire.
    pub x_refresh_margin: Option<i64>,
    /// Path of the upstream callback (register `<public_url><path>` with X).
    pub upstream_callback_path: Option<String>,
    /// X's OpenAPI document, a file or an http(s) URL (default:
    /// `<x_api_url>/2/openapi.json`, cached in the data directory).
    pub x_openapi: Option<String>,
    /// Only these operations become tools (operationIds or `METHOD /path`,
    /// globs allowed).
    pub tools_allow: Option<Vec<String>>,
    /// These operations never become tools.
    pub tools_deny: Option<Vec<String>>,
    /// Only operations with these tags become tools.
    pub tools_tags: Option<Vec<String>>,
    /// Toolsets a connection lists when it selects none (`all`: every one).
    pub tools_toolsets: Option<Vec<String>>,
    /// Only read-only tools, for every connection.
    pub tools_readonly: Option<bool>,
    /// Longest tool result, in characters; longer ones are cut on a record
    /// boundary.
    pub tools_max_result_chars: Option<usize>,
    /// X's prices (a TOML file like the built-in table) instead of the
    /// built-in table.
    pub x_prices_file: Option<PathBuf>,
    /// Daily spending caps in US dollars (`off`: none): per user, per OAuth
    /// client, per deployment.
    pub spend_cap_user: Option<String>,
    pub spend_cap_client: Option<String>,
    pub spend_cap_deployment: Option<String>,
    /// Days the audit trail of calls to X is kept.
    pub audit_retention_days: Option<i64>,
    /// Seconds within which a write repeated with the same arguments by the
    /// same user returns the first result (0: only with an idempotency key).
    pub idempotency_window: Option<i64>,
    /// The largest media file fetched from a URL, in MB.
    pub media_max_mb: Option<u64>,
    /// Fetch media from private and loopback addresses, and over http.
    pub media_allow_private: Option<bool>,
    /// The X app's bearer token, for operations X lets only apps call.
    #[serde(skip)]
    pub x_bearer_token: Option<SecretString>,
    pub x_bearer_token_file: Option<PathBuf>,
    /// Longest wait, in seconds, for X's rate-limit window before a call
    /// is answered "retry at ...".
    pub x_rate_limit_max_wait: Option<i64>,
    /// An OpenID Connect provider's issuer: setting it makes that provider
    /// the identity provider (instead of X).
    pub oidc_issuer: Option<String>,
    pub oidc_client_id: Option<String>,
    #[serde(skip)]
    pub oidc_client_secret: Option<SecretString>,
    pub oidc_client_secret_file: Option<PathBuf>,
    pub oidc_scopes: Option<Vec<String>>,
    /// Resource-server-only mode: an external authorization server issues
    /// the tokens; xmcp verifies them (JWKS or introspection).
    pub external_issuer: Option<String>,
    pub external_jwks_url: Option<String>,
    pub external_introspection_url: Option<String>,
    pub external_client_id: Option<String>,
    #[serde(skip)]
    pub external_client_secret: Option<SecretString>,
    pub external_client_secret_file: Option<PathBuf>,
    /// Requests per minute per client address to each group of
    /// authorization endpoints (0: no limit).
    pub rate_limit_per_ip: Option<u32>,
    /// Requests per minute per OAuth client to each group (0: no limit).
    pub rate_limit_per_client: Option<u32>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// Bearer token `/metrics` requires (none: open).
    #[serde(skip)]
    pub metrics_token: Option<SecretString>,
    pub metrics_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "log format must be `text` or `json`, not `{other}`"
            )),
        }
    }
}

/// A pre-registered client (`[[clients]]` in the TOML file).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: Option<String>,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A local account (`[[users]]` in the TOML file).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    pub username: String,
    /// Argon2 PHC string, from `xmcp hash-password`.
    pub password_hash: String,
    pub display_name: Option<String>,
}

impl std::fmt::Debug for UserSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSettings")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Read a TOML file layer.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| err(format!("config file {} is invalid: {e}", path.display())))
    }

    /// `self` with every field that `over` sets replaced by it.
    pub fn overlay(self, over: Settings) -> Settings {
        macro_rules! pick {
            ($($f:ident),*) => { Settings { $($f: over.$f.or(self.$f),)* clients: if over.clients.is_empty() { self.clients } else { over.clients }, users: if over.users.is_empty() { self.users } else { over.users } } };
        }
        pick!(
            host,
            port,
            public_url,
            data_dir,
            database_url,
            database_max_connections,
            demo,
            demo_public,
            log_format,
            log,
            mcp_stateful,
            allowed_hosts,
            allowed_origins,
            encryption_key,
            encryption_key_file,
            previous_encryption_keys,
            previous_encryption_keys_file,
            scopes,
            access_token_ttl,
            access_token_format,
            refresh_token_ttl,
            refresh_grace,
            registration_enabled,
            registration_limit_per_hour,
            unused_client_ttl,
            cimd_enabled,
            cimd_allow_loopback,
            redirect_schemes,
            sweep_interval,
            shutdown_timeout,
            introspection_clients,
            x_client_id,
            x_client_secret,
            x_client_secret_file,
            x_scopes,
            x_authorize_url,
            x_token_url,
            x_revoke_url,
            x_api_url,
            x_refresh_margin,
            upstream_callback_path,
            x_openapi,
            tools_allow,
            tools_deny,
            tools_tags,
            tools_toolsets,
            tools_readonly,
            tools_max_result_chars,
            x_prices_file,
            spend_cap_user,
            spend_cap_client,
            spend_cap_deployment,
            audit_retention_days,
            idempotency_window,
            media_max_mb,
            media_allow_private,
            x_bearer_token,
            x_bearer_token_file,
            x_rate_limit_max_wait,
            oidc_issuer,
            oidc_client_id,
            oidc_client_secret,
            oidc_client_secret_file,
            oidc_scopes,
            external_issuer,
            external_jwks_url,
            external_introspection_url,
            external_client_id,
            external_client_secret,
            external_client_secret_file,
            rate_limit_per_ip,
            rate_limit_per_client,
            trusted_proxies,
            metrics_token,
            metrics_token_file
        )
    }
}
