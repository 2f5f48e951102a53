//! Typed, layered, validated configuration.
//!
//! Layers, lowest first: built-in defaults, the TOML file (`--config` /
//! `XMCP_CONFIG`), `XMCP_*` environment variables, command-line flags. The
//! binary turns env and flags into one [`Settings`] (clap reads both) and
//! passes it as `overrides`; [`Config::resolve`] merges and validates, with
//! messages that say how to fix what is wrong. Secrets may come from files
//! (`*_FILE` variables / `*_file` keys) and are held as `SecretString`.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use url::Url;
use xmcp_auth::{StaticClient, TokenAuthMethod};

/// A configuration error, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

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

/// Where the encryption key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Given in configuration (env or file).
    Configured(SecretString),
    /// A key file in the data directory, created (0600) on first run.
    DataDirFile(PathBuf),
}

/// The validated configuration. Its `Debug` hides the database URL, which
/// may carry a password.
#[derive(Clone)]
pub struct Config {
    pub host: IpAddr,
    /// The port to listen on. 0 picks a free one: whoever binds it then sets
    /// the port it got here, before building the [`crate::App`].
    pub port: u16,
    pub public_url: Url,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_max_connections: u32,
    pub demo: bool,
    pub log_format: LogFormat,
    pub log: String,
    pub mcp_stateful: bool,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub encryption_key: KeySource,
    pub previous_encryption_keys: Option<SecretString>,
    pub auth: xmcp_auth::AuthConfig,
    pub users: Vec<UserSettings>,
    /// Who signs users in: X (configured or, in demo mode, the simulated X)
    /// or local accounts.
    pub identity: Identity,
    pub sweep_interval: u64,
    pub shutdown_timeout: u64,
    /// Which X operations become tools, and how X is called.
    pub tools: ToolsConfig,
    /// Requests per minute per client address to each group of
    /// authorization endpoints (0: no limit).
    pub rate_limit_per_ip: u32,
    /// Requests per minute per OAuth client to each group (0: no limit).
    pub rate_limit_per_client: u32,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub metrics_token: Option<SecretString>,
}

/// Where X's OpenAPI document comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenApiSource {
    File(PathBuf),
    /// Fetched at startup; the last good copy is cached in the data
    /// directory and used when the URL cannot be fetched.
    Url(Url),
}

/// The X tools: their source document, filters and call settings.
#[derive(Clone)]
pub struct ToolsConfig {
    /// `None`: the X API's own `/2/openapi.json` (the demo: its simulated X's).
    pub openapi: Option<OpenApiSource>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub tags: Vec<String>,
    pub app_token: Option<SecretString>,
    pub max_rate_limit_wait: i64,
    /// Toolsets listed when a connection selects none.
    pub toolsets: Vec<String>,
    /// Only read-only tools, for every connection.
    pub read_only: bool,
    /// Longest tool result, in characters of JSON text.
    pub max_result_chars: usize,
    /// X's prices.
    pub prices: std::sync::Arc<xmcp_openapi::prices::PriceTable>,
    /// Daily caps, in micro-dollars.
    pub caps: crate::mcp::ledger::Caps,
    /// Seconds the audit trail is kept.
    pub audit_retention: i64,
    /// Seconds within which a repeated write returns the first result.
    pub idempotency_window: i64,
    /// How media given by URL are fetched.
    pub media: crate::mcp::media::MediaConfig,
}

/// Toolsets listed by default.
pub const DEFAULT_TOOLSETS: [&str; 1] = [xmcp_openapi::toolsets::CORE_TOOLSET];

/// Tool results longer than this many characters are cut.
pub const DEFAULT_MAX_RESULT_CHARS: usize = 25_000;

/// What one user may spend at X per UTC day by default, in micro-dollars:
/// enough for a few hundred posts read, not for a careless loop.
pub const DEFAULT_USER_CAP: i64 = 1_000_000;

/// Days the audit trail is kept by default.
pub const DEFAULT_AUDIT_DAYS: i64 = 30;

/// Seconds within which a repeated write returns the first result.
pub const DEFAULT_IDEMPOTENCY_WINDOW: i64 = 60;

/// A cap in dollars (`1`, `1.50`, `$2`), or `off`; `None` when unset.
fn cap(value: Option<&str>, name: &str, env: &str) -> Result<Option<Option<i64>>, ConfigError> {
    let Some(raw) = value.map(str::trim) else {
        return Ok(None);
    };
    if raw.eq_ignore_ascii_case("off") || raw.eq_ignore_ascii_case("none") {
        return Ok(Some(None));
    }
    match raw.trim_start_matches('$').parse::<f64>() {
        Ok(usd) if usd.is_finite() && (0.0..=1_000_000.0).contains(&usd) => {
            Ok(Some(Some((usd * 1_000_000.0).round() as i64)))
        }
        _ => Err(err(format!(
            "{name} `{raw}` is not an amount in dollars (e.g. 1.50) or `off`; set {env}"
        ))),
    }
}

fn price_table(s: &Settings) -> Result<xmcp_openapi::prices::PriceTable, ConfigError> {
    let Some(path) = &s.x_prices_file else {
        return Ok(xmcp_openapi::prices::PriceTable::built_in());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(format!(
            "cannot read the price table {} ({e}); set XMCP_X_PRICES_FILE to a file like the built-in crates/openapi/prices.toml",
            path.display()
        ))
    })?;
    xmcp_openapi::prices::PriceTable::parse(&text)
        .map_err(|e| err(format!("{} (XMCP_X_PRICES_FILE={})", e, path.display())))
}

impl std::fmt::Debug for ToolsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolsConfig")
            .field("openapi", &self.openapi)
            .field("allow", &self.allow)
            .field("deny", &self.deny)
            .field("tags", &self.tags)
            .field("app_token", &self.app_token.is_some())
            .field("max_rate_limit_wait", &self.max_rate_limit_wait)
            .field("toolsets", &self.toolsets)
            .field("read_only", &self.read_only)
            .field("max_result_chars", &self.max_result_chars)
            .field("prices", &self.prices.taken)
            .field("caps", &self.caps)
            .field("audit_retention", &self.audit_retention)
            .field("idempotency_window", &self.idempotency_window)
            .field("media", &self.media)
            .finish()
    }
}

fn list(v: &Option<Vec<String>>) -> Vec<String> {
    v.iter()
        .flatten()
        .flat_map(|s| s.split([',', ' ']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn tools_config(s: &Settings) -> Result<ToolsConfig, ConfigError> {
    let openapi = match s.x_openapi.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) if raw.starts_with("http://") || raw.starts_with("https://") => Some(
            OpenApiSource::Url(x_url(Some(raw), "", "x_openapi", "XMCP_X_OPENAPI")?),
        ),
        Some(raw) => {
            let path = PathBuf::from(raw.strip_prefix("file://").unwrap_or(raw));
            if !path.is_file() {
                return Err(err(format!(
                    "x_openapi {} is not a readable file; set XMCP_X_OPENAPI to a copy of X's OpenAPI document or to its URL (https://api.x.com/2/openapi.json)",
                    path.display()
                )));
            }
            Some(OpenApiSource::File(path))
        }
    };
    let app_token = match (&s.x_bearer_token, &s.x_bearer_token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(path)) => Some(read_secret_file(path, "the X app bearer token")?),
        (None, None) => None,
    }
    .filter(|t| !t.expose_secret().is_empty());
    let max_rate_limit_wait = match s.x_rate_limit_max_wait {
        None => 20,
        Some(v) if (0..=900).contains(&v) => v,
        Some(_) => {
            return Err(err(
                "x_rate_limit_max_wait must be between 0 and 900 seconds (X's windows are 15 minutes; set XMCP_X_RATE_LIMIT_MAX_WAIT)",
            ));
        }
    };
    let toolsets = match list(&s.tools_toolsets) {
        l if l.is_empty() => DEFAULT_TOOLSETS.map(String::from).to_vec(),
        l => l,
    };
    if let Some(bad) = toolsets
        .iter()
        .find(|t| !xmcp_openapi::toolsets::is_valid_toolset_name(t))
    {
        return Err(err(format!(
            "tools_toolsets names `{bad}`, which is not a toolset name (lowercase letters, digits and _; `xmcp tools --openapi FILE --toolsets` lists them); set XMCP_TOOLS_TOOLSETS"
        )));
    }
    let max_result_chars = match s.tools_max_result_chars {
        None => DEFAULT_MAX_RESULT_CHARS,
        Some(n) if n >= 1_000 => n,
        Some(_) => {
            return Err(err(
                "tools_max_result_chars must be at least 1000 (set XMCP_TOOLS_MAX_RESULT_CHARS)",
            ));
        }
    };
    let caps = crate::mcp::ledger::Caps {
        user: cap(
            s.spend_cap_user.as_deref(),
            "spend_cap_user",
            "XMCP_SPEND_CAP_USER",
        )?
        .unwrap_or(Some(DEFAULT_USER_CAP)),
        client: cap(
            s.spend_cap_client.as_deref(),
            "spend_cap_client",
            "XMCP_SPEND_CAP_CLIENT",
        )?
        .flatten(),
        deployment: cap(
            s.spend_cap_deployment.as_deref(),
            "spend_cap_deployment",
            "XMCP_SPEND_CAP_DEPLOYMENT",
        )?
        .flatten(),
    };
    let audit_days = match s.audit_retention_days {
        None => DEFAULT_AUDIT_DAYS,
        Some(d) if (1..=3_650).contains(&d) => d,
        Some(_) => {
            return Err(err(
                "audit_retention_days must be between 1 and 3650 (set XMCP_AUDIT_RETENTION_DAYS)",
            ));
        }
    };
    let idempotency_window = match s.idempotency_window {
        None => DEFAULT_IDEMPOTENCY_WINDOW,
        Some(w) if (0..=86_400).contains(&w) => w,
        Some(_) => {
            return Err(err(
                "idempotency_window must be between 0 and 86400 seconds (set XMCP_IDEMPOTENCY_WINDOW)",
            ));
        }
    };
    let media_max = match s.media_max_mb {
        None => 64,
        Some(mb) if (1..=512).contains(&mb) => mb,
        Some(_) => {
            return Err(err(
                "media_max_mb must be between 1 and 512 (X's largest video; set XMCP_MEDIA_MAX_MB)",
            ));
        }
    };
    let media = crate::mcp::media::MediaConfig {
        max_bytes: media_max << 20,
        allow_private: s.media_allow_private.unwrap_or(false),
        ..Default::default()
    };
    Ok(ToolsConfig {
        openapi,
        allow: list(&s.tools_allow),
        deny: list(&s.tools_deny),
        tags: list(&s.tools_tags),
        app_token,
        max_rate_limit_wait,
        toolsets,
        read_only: s.tools_readonly.unwrap_or(false),
        max_result_chars,
        prices: std::sync::Arc::new(price_table(s)?),
        caps,
        audit_retention: audit_days * 86_400,
        idempotency_window,
        media,
    })
}

/// The identity provider behind the consent page.
#[derive(Clone, Debug)]
pub enum Identity {
    /// X's OAuth 2.0 (or anything speaking it, like `xmcp sandbox`).
    X(Box<XUpstream>),
    /// A generic OpenID Connect provider (no X tools: nobody has X tokens).
    Oidc(Box<xmcp_auth::oidc::OidcConfig>),
    /// Resource-server-only: no sign-in here; an external authorization
    /// server's tokens are verified.
    External(Box<xmcp_auth::external::ExternalConfig>),
    /// The simulated X, served by this process under [`SANDBOX_PATH`].
    DemoSandbox { refresh_margin: i64 },
    /// Local username/password accounts from `[[users]]`.
    Local,
}

/// Where the demo's simulated X is mounted.
pub const SANDBOX_PATH: &str = "/sandbox";

/// A configured X upstream.
#[derive(Clone, Debug)]
pub struct XUpstream {
    pub oauth: xmcp_x::XOAuthConfig,
    pub refresh_margin: i64,
}

/// Scopes requested from X when `x_scopes` is not set.
pub const DEFAULT_X_SCOPES: [&str; 3] = ["tweet.read", "users.read", "offline.access"];

fn x_url(value: Option<&str>, default: &str, name: &str, env: &str) -> Result<Url, ConfigError> {
    let raw = value.unwrap_or(default);
    let u = Url::parse(raw)
        .map_err(|e| err(format!("{name} `{raw}` is not a URL ({e}); set {env}")))?;
    if u.scheme() != "https" && !(u.scheme() == "http" && is_loopback_url(&u)) {
        return Err(err(format!(
            "{name} {u} must use https (http only on loopback, e.g. a local `xmcp sandbox`); set {env}"
        )));
    }
    Ok(u)
}

fn x_scopes(s: &Settings) -> Result<Vec<String>, ConfigError> {
    let scopes: Vec<String> = match &s.x_scopes {
        Some(list) => list
            .iter()
            .flat_map(|s| s.split([' ', ',']))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => DEFAULT_X_SCOPES.map(String::from).to_vec(),
    };
    if !scopes.iter().any(|s| s == "offline.access") {
        return Err(err(
            "x_scopes must include offline.access: without it X issues no refresh token and every user would have to sign in again every two hours (set XMCP_X_SCOPES, e.g. \"tweet.read users.read offline.access\")",
        ));
    }
    Ok(scopes)
}

fn x_refresh_margin(s: &Settings) -> Result<i64, ConfigError> {
    match s.x_refresh_margin {
        None => Ok(60),
        Some(v) if (0..=3600).contains(&v) => Ok(v),
        Some(_) => Err(err(
            "x_refresh_margin must be between 0 and 3600 seconds (set XMCP_X_REFRESH_MARGIN)",
        )),
    }
}

fn oidc(s: &Settings, issuer: &str) -> Result<Identity, ConfigError> {
    let u = x_url(Some(issuer), "", "oidc_issuer", "XMCP_OIDC_ISSUER")?;
    if u.query().is_some() || u.fragment().is_some() {
        return Err(err(
            "oidc_issuer must be the provider's issuer identifier (no query or fragment), e.g. https://login.example.com/realms/main",
        ));
    }
    let Some(client_id) = s.oidc_client_id.clone().filter(|c| !c.trim().is_empty()) else {
        return Err(err(
            "oidc_issuer is set but oidc_client_id is not: register xmcp as a client with the provider (callback <public_url>/upstream/callback) and set XMCP_OIDC_CLIENT_ID",
        ));
    };
    let client_secret = match (&s.oidc_client_secret, &s.oidc_client_secret_file) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(path)) => Some(read_secret_file(path, "the OIDC client secret")?),
        (None, None) => None,
    };
    let scopes = s
        .oidc_scopes
        .clone()
        .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()])
        .iter()
        .flat_map(|s| s.split([' ', ',']))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Identity::Oidc(Box::new(xmcp_auth::oidc::OidcConfig {
        issuer: issuer.to_owned(),
        client_id,
        client_secret,
        scopes,
    })))
}

fn external(s: &Settings, issuer: &str) -> Result<Identity, ConfigError> {
    use xmcp_auth::external::{ExternalConfig, ExternalTokens};
    if s.x_client_id.is_some() || s.oidc_issuer.is_some() {
        return Err(err(
            "external_issuer (resource-server-only mode) cannot be combined with x_client_id or oidc_issuer: the external server signs users in",
        ));
    }
    let tokens = match (&s.external_jwks_url, &s.external_introspection_url) {
        (Some(jwks), None) => ExternalTokens::Jwt {
            jwks_url: x_url(
                Some(jwks),
                "",
                "external_jwks_url",
                "XMCP_EXTERNAL_JWKS_URL",
            )?
            .to_string(),
        },
        (None, Some(url)) => {
            let url = x_url(
                Some(url),
                "",
                "external_introspection_url",
                "XMCP_EXTERNAL_INTROSPECTION_URL",
            )?;
            let secret = match (&s.external_client_secret, &s.external_client_secret_file) {
                (Some(k), _) => Some(k.clone()),
                (None, Some(path)) => {
                    Some(read_secret_file(path, "the introspection client secret")?)
                }
                (None, None) => None,
            };
            let (Some(client_id), Some(client_secret)) = (s.external_client_id.clone(), secret)
            else {
                return Err(err(
                    "introspection needs this resource server's credentials at the external issuer: set XMCP_EXTERNAL_CLIENT_ID and XMCP_EXTERNAL_CLIENT_SECRET_FILE",
                ));
            };
            ExternalTokens::Introspection {
                url: url.to_string(),
                client_id,
                client_secret,
            }
        }
        _ => {
            return Err(err(
                "with external_issuer, set exactly one of XMCP_EXTERNAL_JWKS_URL (JWT access tokens) or XMCP_EXTERNAL_INTROSPECTION_URL (RFC 7662 introspection)",
            ));
        }
    };
    Ok(Identity::External(Box::new(ExternalConfig {
        issuer: issuer.to_owned(),
        tokens,
    })))
}

fn identity(s: &Settings, demo: bool) -> Result<Identity, ConfigError> {
    if let Some(issuer) = s.external_issuer.clone().filter(|i| !i.trim().is_empty()) {
        return external(s, &issuer);
    }
    let oidc_issuer = s.oidc_issuer.clone().filter(|i| !i.trim().is_empty());
    if oidc_issuer.is_some() && s.x_client_id.is_some() {
        return Err(err(
            "both x_client_id and oidc_issuer are set: choose one identity provider (X, or an OpenID Connect provider)",
        ));
    }
    if let Some(issuer) = oidc_issuer {
        return oidc(s, &issuer);
    }
    let Some(client_id) = s.x_client_id.clone().filter(|c| !c.trim().is_empty()) else {
        let stray = s.x_client_secret.is_some()
            || s.x_client_secret_file.is_some()
            || s.x_authorize_url.is_some()
            || s.x_token_url.is_some()
            || s.x_api_url.is_some();
        if stray {
            return Err(err(
                "X settings are given but x_client_id is not: set XMCP_X_CLIENT_ID to your X app's OAuth 2.0 client id",
            ));
        }
        if demo {
            x_scopes(s)?;
            return Ok(Identity::DemoSandbox {
                refresh_margin: x_refresh_margin(s)?,
            });
        }
        if s.users.is_empty() {
            return Err(err(
                "no way for users to sign in is configured: set XMCP_X_CLIENT_ID and XMCP_X_CLIENT_SECRET_FILE (sign in with X), or add local accounts as [[users]] entries in the config file (hash passwords with `xmcp hash-password`), or run `xmcp serve --demo` to try xmcp with a simulated X",
            ));
        }
        return Ok(Identity::Local);
    };
    let client_secret = match (&s.x_client_secret, &s.x_client_secret_file) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(path)) => Some(read_secret_file(path, "the X client secret")?),
        (None, None) => None,
    };
    Ok(Identity::X(Box::new(XUpstream {
        oauth: xmcp_x::XOAuthConfig {
            client_id,
            client_secret,
            authorize_url: x_url(
                s.x_authorize_url.as_deref(),
                "https://x.com/i/oauth2/authorize",
                "x_authorize_url",
                "XMCP_X_AUTHORIZE_URL",
            )?,
            token_url: x_url(
                s.x_token_url.as_deref(),
                "https://api.x.com/2/oauth2/token",
                "x_token_url",
                "XMCP_X_TOKEN_URL",
            )?,
            revoke_url: x_url(
                s.x_revoke_url.as_deref(),
                "https://api.x.com/2/oauth2/revoke",
                "x_revoke_url",
                "XMCP_X_REVOKE_URL",
            )?,
            api_url: x_url(
                s.x_api_url.as_deref(),
                "https://api.x.com",
                "x_api_url",
                "XMCP_X_API_URL",
            )?,
            required_scopes: x_scopes(s)?,
        },
        refresh_margin: x_refresh_margin(s)?,
    })))
}

fn read_secret_file(path: &Path, what: &str) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read {what} from {}: {e}", path.display())))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

fn is_loopback_url(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The default data directory: the platform's per-user data dir.
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("dev", "xmcp", "xmcp")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".xmcp"))
}

fn positive(name: &str, env: &str, v: i64) -> Result<i64, ConfigError> {
    if v <= 0 {
        return Err(err(format!(
            "{name} must be a positive number of seconds (set {env})"
        )));
    }
    Ok(v)
}

impl Config {
    /// Merge `file` (if any) under `overrides` and validate.
    pub fn resolve(file: Option<Settings>, overrides: Settings) -> Result<Config, ConfigError> {
        let s = file.unwrap_or_default().overlay(overrides);
        let demo = s.demo.unwrap_or(false);
        let host = s.host.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let port = s.port.unwrap_or(8000);

        let public_url = match &s.public_url {
            Some(u) => Url::parse(u).map_err(|e| {
                err(format!("public_url `{u}` is not a URL ({e}); set XMCP_PUBLIC_URL to the address clients use, e.g. https://mcp.example.com"))
            })?,
            None if host.is_unspecified() => {
                return Err(err(format!(
                    "the server listens on {host}, so it cannot guess the address clients use: set XMCP_PUBLIC_URL (or --public-url), e.g. https://mcp.example.com"
                )));
            }
            None => {
                let h = match host {
                    IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                };
                Url::parse(&format!("http://{h}:{port}")).map_err(|e| err(e.to_string()))?
            }
        };
        if public_url.scheme() != "https"
            && !(public_url.scheme() == "http" && is_loopback_url(&public_url))
        {
            return Err(err(format!(
                "public_url {public_url} must use https (plain http is only allowed on loopback addresses such as 127.0.0.1); put xmcp behind a TLS-terminating proxy and set XMCP_PUBLIC_URL=https://..."
            )));
        }
        if public_url.path() != "/"
            || public_url.query().is_some()
            || public_url.fragment().is_some()
        {
            return Err(err(format!(
                "public_url {public_url} must be a bare origin (scheme, host and optional port, no path): it becomes the OAuth issuer, and the MCP endpoint is <public_url>/mcp"
            )));
        }

        if demo && !s.demo_public.unwrap_or(false) {
            let exposed = if !host.is_loopback() {
                Some(format!("it would listen on {host}"))
            } else if !is_loopback_url(&public_url) {
                Some(format!("its public URL is {public_url}"))
            } else {
                None
            };
            if let Some(exposed) = exposed {
                return Err(err(format!(
                    "--demo is for trying xmcp on this machine, and {exposed}: other machines could sign in as its demo accounts and use its authorization server. Keep it local (--host 127.0.0.1 and no public URL, or a loopback one), or, to show the demo to others on purpose, add --demo-public (XMCP_DEMO_PUBLIC=true)"
                )));
            }
        }

        let data_dir = s.data_dir.clone().unwrap_or_else(default_data_dir);
        let database_url = s
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("xmcp.db").display()));
        let is_postgres =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if !is_postgres && !database_url.starts_with("sqlite:") {
            return Err(err(format!(
                "database_url must start with sqlite:// or postgres:// (got `{}`); set XMCP_DATABASE_URL",
                database_url.split('@').next_back().unwrap_or("")
            )));
        }

        let encryption_key = match (s.encryption_key.clone(), &s.encryption_key_file) {
            (Some(k), _) => KeySource::Configured(k),
            (None, Some(path)) => {
                KeySource::Configured(read_secret_file(path, "the encryption key")?)
            }
            (None, None) if is_postgres => {
                return Err(err(
                    "with PostgreSQL every instance must use the same encryption key: generate one with `xmcp gen-key` and set XMCP_ENCRYPTION_KEY_FILE (or XMCP_ENCRYPTION_KEY) on all instances",
                ));
            }
            (None, None) => KeySource::DataDirFile(data_dir.join("encryption.key")),
        };
        if let KeySource::Configured(k) = &encryption_key {
            xmcp_crypto::envelope::DataKey::parse(k.expose_secret()).map_err(|e| {
                err(format!(
                    "the encryption key is invalid ({e}); generate one with `xmcp gen-key`"
                ))
            })?;
        }
        let previous_encryption_keys = match (
            s.previous_encryption_keys.clone(),
            &s.previous_encryption_keys_file,
        ) {
            (Some(k), _) => Some(k),
            (None, Some(path)) => Some(read_secret_file(path, "the previous encryption keys")?),
            (None, None) => None,
        };
        if let Some(prev) = &previous_encryption_keys {
            for k in prev
                .expose_secret()
                .split([',', '\n'])
                .filter(|k| !k.trim().is_empty())
            {
                xmcp_crypto::envelope::DataKey::parse(k).map_err(|e| {
                    err(format!("a previous encryption key is invalid ({e}); list them as `id:key` separated by commas"))
                })?;
            }
        }

        let mut auth = xmcp_auth::AuthConfig::new(&public_url, xmcp_x::scopes::names());
        auth.scope_words = xmcp_x::scopes::words();
        auth.service_name = "the X API".into();
        auth.resource_name = "xmcp: the X API over MCP".into();
        if let Some(scopes) = &s.scopes {
            let scopes: Vec<String> = scopes
                .iter()
                .flat_map(|s| s.split([' ', ',']))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if scopes.is_empty() {
                return Err(err("scopes must not be empty (set XMCP_SCOPES)"));
            }
            if scopes.iter().any(|s| s == "offline_access") {
                return Err(err(
                    "scopes must not list offline_access: refresh tokens are issued to every client registered for the refresh grant",
                ));
            }
            auth.scopes = scopes;
        }
        if let Some(v) = s.access_token_ttl {
            auth.access_token_ttl = positive("access_token_ttl", "XMCP_ACCESS_TOKEN_TTL", v)?;
        }
        match s.access_token_format.as_deref() {
            None | Some("opaque") => {}
            Some("jwt") => auth.jwt_access_tokens = true,
            Some(other) => {
                return Err(err(format!(
                    "access_token_format must be `opaque` or `jwt`, not `{other}` (XMCP_ACCESS_TOKEN_FORMAT)"
                )));
            }
        }
        if let Some(v) = s.refresh_token_ttl {
            auth.refresh_token_ttl = positive("refresh_token_ttl", "XMCP_REFRESH_TOKEN_TTL", v)?;
        }
        if let Some(v) = s.refresh_grace {
            if !(0..=60).contains(&v) {
                return Err(err(
                    "refresh_grace must be between 0 and 60 seconds (set XMCP_REFRESH_GRACE)",
                ));
            }
            auth.refresh_grace = v;
        }
        if let Some(v) = s.registration_enabled {
            auth.registration_enabled = v;
        }
        if let Some(v) = s.registration_limit_per_hour {
            auth.registration_limit_per_hour = positive(
                "registration_limit_per_hour",
                "XMCP_REGISTRATION_LIMIT_PER_HOUR",
                v,
            )?;
        }
        if let Some(v) = s.unused_client_ttl {
            auth.unused_client_ttl = positive("unused_client_ttl", "XMCP_UNUSED_CLIENT_TTL", v)?;
        }
        if let Some(v) = s.cimd_enabled {
            auth.cimd_enabled = v;
        }
        if let Some(schemes) = &s.redirect_schemes {
            auth.redirect_schemes = xmcp_auth::redirect::SchemePolicy::new(list(&Some(schemes.clone())))
                .map_err(|e| {
                    err(format!(
                        "redirect_schemes: {e}; list native clients' schemes such as cursor or vscode (set XMCP_REDIRECT_SCHEMES)"
                    ))
                })?;
        }
        if s.cimd_allow_loopback == Some(true) {
            if !is_loopback_url(&public_url) {
                return Err(err(
                    "cimd_allow_loopback lets the server fetch from loopback addresses; it is only allowed when the server itself runs on a loopback public_url (development)",
                ));
            }
            auth.cimd_allow_loopback = true;
        }
        auth.introspection_clients = s.introspection_clients.clone().unwrap_or_default();
        for c in &s.clients {
            auth.static_clients
                .push(static_client(c, &auth.redirect_schemes)?);
        }

        if let Some(path) = &s.upstream_callback_path {
            if !path.starts_with('/') || path.contains(['?', '#']) || path == "/mcp" {
                return Err(err(format!(
                    "upstream_callback_path `{path}` must be a path starting with `/` (no query), e.g. /upstream/callback (XMCP_UPSTREAM_CALLBACK_PATH)"
                )));
            }
            auth.upstream_callback_path = path.clone();
        }
        let identity = identity(&s, demo)?;
        for u in &s.users {
            if u.username.trim().is_empty() || u.username.contains(':') {
                return Err(err(format!(
                    "user name `{}` must be non-empty and contain no `:`",
                    u.username
                )));
            }
            if !xmcp_crypto::password::is_valid_hash(&u.password_hash) {
                return Err(err(format!(
                    "the password_hash of user `{}` is not an argon2 hash; create one with `xmcp hash-password`",
                    u.username
                )));
            }
        }

        let log_format = s.log_format.unwrap_or_default();
        let log = s.log.clone().unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log)
            .map_err(|e| err(format!("log filter `{log}` is invalid ({e}); use e.g. `info` or `xmcp=debug,info` (XMCP_LOG)")))?;

        let mut allowed_hosts = s.allowed_hosts.clone().unwrap_or_default();
        if let Some(h) = public_url.host_str() {
            allowed_hosts.push(h.trim_start_matches('[').trim_end_matches(']').to_owned());
            if let Some(p) = public_url.port() {
                allowed_hosts.push(format!("{h}:{p}"));
            }
        }
        allowed_hosts.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        let mut allowed_origins = s.allowed_origins.clone().unwrap_or_default();
        allowed_origins.push(public_url.origin().ascii_serialization());
        allowed_origins.extend(
            ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"].map(String::from),
        );

        let tools = tools_config(&s)?;
        // Whoever signs in with X is told, before allowing, what the server
        // lets calls to X cost them.
        if matches!(identity, Identity::X(_) | Identity::DemoSandbox { .. })
            && let Some(cap) = tools.caps.user
        {
            auth.consent_notes.push(format!(
                "Calls to X made for you through this server are limited to {} a day (UTC); X bills the operator per call.",
                xmcp_openapi::prices::dollars(cap)
            ));
        }

        Ok(Config {
            host,
            port,
            public_url,
            data_dir,
            database_url,
            database_max_connections: s.database_max_connections.unwrap_or(10).max(1),
            demo,
            log_format,
            log,
            mcp_stateful: s.mcp_stateful.unwrap_or(false),
            allowed_hosts,
            allowed_origins,
            encryption_key,
            previous_encryption_keys,
            auth,
            users: s.users.clone(),
            identity,
            sweep_interval: s.sweep_interval.unwrap_or(300).max(1),
            shutdown_timeout: s.shutdown_timeout.unwrap_or(10),
            tools,
            rate_limit_per_ip: s.rate_limit_per_ip.unwrap_or(300),
            rate_limit_per_client: s.rate_limit_per_client.unwrap_or(600),
            trusted_proxies: s
                .trusted_proxies
                .iter()
                .flatten()
                .map(|p| {
                    let p = p.trim();
                    p.parse::<ipnet::IpNet>()
                        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            err(format!(
                                "trusted proxy `{p}` is not an IP address or CIDR range, e.g. 10.0.0.0/8 (XMCP_TRUSTED_PROXIES)"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
            metrics_token: match (&s.metrics_token, &s.metrics_token_file) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(path)) => Some(read_secret_file(path, "the metrics token")?),
                (None, None) => None,
            },
        })
    }

    /// The MCP endpoint URL (also the OAuth resource identifier).
    pub fn mcp_url(&self) -> &str {
        &self.auth.resource
    }
}

/// The database URL without credentials: scheme and what follows `@`.
pub fn redacted_database_url(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, rest))) => format!("{scheme}://***@{rest}"),
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("public_url", &self.public_url.as_str())
            .field("listen", &(self.host, self.port))
            .field("data_dir", &self.data_dir)
            .field("database_url", &redacted_database_url(&self.database_url))
            .field("demo", &self.demo)
            .field("mcp_stateful", &self.mcp_stateful)
            .field("identity", &self.identity)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

fn static_client(
    c: &ClientSettings,
    schemes: &xmcp_auth::redirect::SchemePolicy,
) -> Result<StaticClient, ConfigError> {
    if c.client_id.trim().is_empty()
        || c.client_id.starts_with("https://")
        || c.client_id.starts_with("http://")
    {
        return Err(err(format!(
            "static client id `{}` must be non-empty and must not be a URL (URLs are metadata-document clients)",
            c.client_id
        )));
    }
    let secret = match (&c.client_secret, &c.client_secret_file) {
        (Some(s), _) => Some(SecretString::from(s.clone())),
        (None, Some(p)) => Some(read_secret_file(p, "a client secret")?),
        (None, None) => None,
    };
    let auth_method = match c.token_endpoint_auth_method.as_deref() {
        None if secret.is_some() => TokenAuthMethod::ClientSecretBasic,
        None => TokenAuthMethod::None,
        Some(m) => TokenAuthMethod::parse(m).ok_or_else(|| {
            err(format!("client `{}`: token_endpoint_auth_method must be none, client_secret_basic or client_secret_post", c.client_id))
        })?,
    };
    if (auth_method == TokenAuthMethod::None) != secret.is_none() {
        return Err(err(format!(
            "client `{}`: a confidential client needs client_secret (or client_secret_file) and a public one (none) must not have one",
            c.client_id
        )));
    }
    if c.redirect_uris.is_empty() {
        return Err(err(format!(
            "client `{}` needs at least one redirect_uris entry",
            c.client_id
        )));
    }
    for uri in &c.redirect_uris {
        xmcp_auth::redirect::validate_registered_with(uri, schemes)
            .map_err(|e| err(format!("client `{}`: redirect URI {uri}: {e}", c.client_id)))?;
    }
    Ok(StaticClient {
        client_id: c.client_id.clone(),
        client_secret: secret,
        client_name: c.client_name.clone(),
        redirect_uris: c.redirect_uris.clone(),
        auth_method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Settings {
        Settings {
            demo: Some(true),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_loopback_and_sqlite() {
        let c = Config::resolve(None, demo()).unwrap();
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8000/");
        assert_eq!(c.auth.issuer, "http://127.0.0.1:8000");
        assert_eq!(c.auth.resource, "http://127.0.0.1:8000/mcp");
        assert!(c.database_url.starts_with("sqlite://"));
        assert!(matches!(c.encryption_key, KeySource::DataDirFile(_)));
    }

    #[test]
    fn errors_say_how_to_fix() {
        let cases = [
            (
                Settings {
                    public_url: Some("http://mcp.example.com".into()),
                    ..demo()
                },
                "https",
            ),
            (
                Settings {
                    public_url: Some("https://mcp.example.com/base".into()),
                    ..demo()
                },
                "bare origin",
            ),
            (
                Settings {
                    host: Some("0.0.0.0".parse().unwrap()),
                    ..demo()
                },
                "XMCP_PUBLIC_URL",
            ),
            (
                Settings {
                    database_url: Some("postgres://db/x".into()),
                    ..demo()
                },
                "xmcp gen-key",
            ),
            (
                Settings {
                    encryption_key: Some("short".to_owned().into()),
                    ..demo()
                },
                "xmcp gen-key",
            ),
            (Settings::default(), "--demo"),
            (
                Settings {
                    refresh_grace: Some(600),
                    ..demo()
                },
                "XMCP_REFRESH_GRACE",
            ),
            (
                Settings {
                    log: Some("[[".into()),
                    ..demo()
                },
                "XMCP_LOG",
            ),
            (
                Settings {
                    x_client_id: Some("app".into()),
                    x_scopes: Some(vec!["tweet.read users.read".into()]),
                    ..Default::default()
                },
                "offline.access",
            ),
            (
                Settings {
                    x_client_id: Some("app".into()),
                    x_token_url: Some("http://api.example.com/2/oauth2/token".into()),
                    ..Default::default()
                },
                "XMCP_X_TOKEN_URL",
            ),
            (
                Settings {
                    x_client_secret_file: Some("/nonexistent".into()),
                    ..demo()
                },
                "XMCP_X_CLIENT_ID",
            ),
            (
                Settings {
                    x_client_id: Some("app".into()),
                    oidc_issuer: Some("https://id.example.com".into()),
                    ..Default::default()
                },
                "choose one",
            ),
            (
                Settings {
                    oidc_issuer: Some("https://id.example.com".into()),
                    ..Default::default()
                },
                "XMCP_OIDC_CLIENT_ID",
            ),
            (
                Settings {
                    upstream_callback_path: Some("callback".into()),
                    ..demo()
                },
                "XMCP_UPSTREAM_CALLBACK_PATH",
            ),
            (
                Settings {
                    x_refresh_margin: Some(-1),
                    ..demo()
                },
                "XMCP_X_REFRESH_MARGIN",
            ),
            (
                Settings {
                    x_rate_limit_max_wait: Some(3600),
                    ..demo()
                },
                "XMCP_X_RATE_LIMIT_MAX_WAIT",
            ),
            (
                Settings {
                    x_openapi: Some("/nonexistent/openapi.json".into()),
                    ..demo()
                },
                "x_openapi /nonexistent/openapi.json is not a readable file",
            ),
            (
                Settings {
                    x_openapi: Some("http://api.example.com/2/openapi.json".into()),
                    ..demo()
                },
                "must use https",
            ),
            (
                Settings {
                    external_issuer: Some("https://auth.example.com".into()),
                    ..Default::default()
                },
                "exactly one of XMCP_EXTERNAL_JWKS_URL",
            ),
            (
                Settings {
                    external_issuer: Some("https://auth.example.com".into()),
                    external_introspection_url: Some("https://auth.example.com/introspect".into()),
                    ..Default::default()
                },
                "XMCP_EXTERNAL_CLIENT_ID",
            ),
            (
                Settings {
                    external_issuer: Some("https://auth.example.com".into()),
                    external_jwks_url: Some("https://auth.example.com/jwks".into()),
                    x_client_id: Some("app".into()),
                    ..Default::default()
                },
                "cannot be combined",
            ),
        ];
        for (s, hint) in cases {
            let e = Config::resolve(None, s).unwrap_err().to_string();
            assert!(e.contains(hint), "{e}");
        }
    }

    /// The demo signs anyone in as its demo accounts: it stays on this
    /// machine unless the operator says otherwise.
    #[test]
    fn the_demo_refuses_to_be_exposed_unless_asked() {
        let exposed = [
            Settings {
                host: Some("0.0.0.0".parse().unwrap()),
                public_url: Some("http://127.0.0.1:8000".into()),
                ..demo()
            },
            Settings {
                host: Some("192.168.1.5".parse().unwrap()),
                public_url: Some("http://localhost:8000".into()),
                ..demo()
            },
            Settings {
                public_url: Some("https://demo.example.com".into()),
                ..demo()
            },
            Settings {
                host: Some("::".parse().unwrap()),
                public_url: Some("https://demo.example.com".into()),
                ..demo()
            },
        ];
        for s in exposed {
            let e = Config::resolve(None, s.clone()).unwrap_err().to_string();
            assert!(
                e.contains("--demo-public") && e.contains("XMCP_DEMO_PUBLIC=true"),
                "{e}"
            );
            let c = Config::resolve(
                None,
                Settings {
                    demo_public: Some(true),
                    ..s
                },
            )
            .unwrap();
            assert!(c.demo);
        }
        for local in ["127.0.0.1", "::1"] {
            let s = Settings {
                host: Some(local.parse().unwrap()),
                ..demo()
            };
            assert!(Config::resolve(None, s).is_ok(), "{local}");
        }
        // Without the demo, the setting changes nothing.
        let s = Settings {
            host: Some("0.0.0.0".parse().unwrap()),
            public_url: Some("https://mcp.example.com".into()),
            users: vec![UserSettings {
                username: "alice".into(),
                password_hash: xmcp_crypto::password::hash("x"),
                display_name: None,
            }],
            ..Default::default()
        };
        assert!(Config::resolve(None, s).is_ok());
    }

    #[test]
    fn the_identity_provider_follows_the_settings() {
        let x = Config::resolve(
            None,
            Settings {
                x_client_id: Some("app".into()),
                x_client_secret: Some("shh-secret".to_owned().into()),
                ..Default::default()
            },
        )
        .unwrap();
        let Identity::X(up) = &x.identity else {
            panic!("{:?}", x.identity)
        };
        assert_eq!(
            up.oauth.token_url.as_str(),
            "https://api.x.com/2/oauth2/token"
        );
        assert_eq!(up.oauth.required_scopes, DEFAULT_X_SCOPES);
        assert_eq!(up.refresh_margin, 60);
        assert!(!format!("{x:?}").contains("shh-secret"));
        let demo = Config::resolve(None, demo()).unwrap();
        assert!(matches!(demo.identity, Identity::DemoSandbox { .. }));
        let oidc = Config::resolve(
            None,
            Settings {
                oidc_issuer: Some("https://id.example.com/realms/a".into()),
                oidc_client_id: Some("xmcp".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(oidc.identity, Identity::Oidc(_)));
    }

    #[test]
    fn debug_output_hides_database_credentials() {
        let s = Settings {
            database_url: Some("postgres://app:hunter2@db.internal:5432/xmcp".into()),
            encryption_key: Some(
                xmcp_crypto::envelope::DataKey::generate("k")
                    .unwrap()
                    .export(),
            ),
            ..demo()
        };
        let c = Config::resolve(None, s).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("postgres://***@db.internal:5432/xmcp"),
            "{debug}"
        );
        assert_eq!(
            redacted_database_url("sqlite:///tmp/x.db"),
            "sqlite:///tmp/x.db"
        );
    }

    #[test]
    fn flags_override_file() {
        let file: Settings = toml::from_str("port = 9000\ndemo = true\n[[clients]]\nclient_id = \"cli\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\n").unwrap();
        let c = Config::resolve(Some(file.clone()), Settings::default()).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.auth.static_clients.len(), 1);
        let c = Config::resolve(
            Some(file),
            Settings {
                port: Some(9100),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.port, 9100);
        assert!(toml::from_str::<Settings>("no_such_setting = 1").is_err());
    }
}
