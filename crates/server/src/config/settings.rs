//! Every setting, declared once: its TOML key (the field name), its flag and
//! `XMCP_*` variable, its `--help` text and its type. Settings are grouped
//! by concern; each group is at once a set of command-line flags (clap), a
//! part of the flat TOML file (serde) and a layer that merges over another
//! (merge). Defaults and validation are in the group's resolution (the other
//! files of this module), which turns a merged [`Settings`] into a
//! [`Config`](super::Config).
//!
//! The secrets among the settings (`#[serde(skip)]`) come only from a flag,
//! a variable or their `*_file` setting, never from the TOML file itself.
//! (A `[[clients]]` entry may still hold its `client_secret` inline; its
//! `client_secret_file` is the better choice.)
//!
//! A field's doc comment is its `--help` text, written for a terminal:
//! `<public_url>` there is a placeholder and URLs are plain text.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]

use super::*;
use clap::Args;
use clap::builder::BoolishValueParser;
use merge::Merge;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;

/// `--help` headings.
const GENERAL: &str = "General";
const STORAGE: &str = "Storage and encryption";
const X: &str = "X";
const SERVER: &str = "HTTP server";
const AS: &str = "Authorization server";
const OIDC: &str = "Sign-in with OpenID Connect instead of X";
const RS_ONLY: &str = "Resource server only (tokens from another issuer)";
const LIMITS: &str = "Rate limits and metrics";

/// A secret given as a flag or variable.
fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

// No `Debug` on the groups: they hold secrets and a database URL that may
// carry a password.

/// Logging. Global flags, so that they may also follow a subcommand.
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct LogSettings {
    /// Log format: text or json.
    #[arg(long, global = true, env = "XMCP_LOG_FORMAT", help_heading = GENERAL)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `xmcp=debug,info`.
    #[arg(long, global = true, env = "XMCP_LOG", help_heading = GENERAL)]
    pub log: Option<String>,
}

/// Where state lives: `xmcp admin users --data-dir DIR` works too.
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct StoreSettings {
    /// Directory for the SQLite database and the local key file.
    #[arg(long, global = true, env = "XMCP_DATA_DIR", help_heading = STORAGE)]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://... (default: SQLite in the data dir).
    #[arg(long, global = true, env = "XMCP_DATABASE_URL", hide_env_values = true, help_heading = STORAGE)]
    pub database_url: Option<String>,
    /// Database connections this process opens at most (default 10).
    #[arg(long, global = true, env = "XMCP_DATABASE_MAX_CONNECTIONS", help_heading = STORAGE)]
    pub database_max_connections: Option<u32>,
}

/// How state is sealed.
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct KeySettings {
    /// Encryption key (`id:base64url`); prefer XMCP_ENCRYPTION_KEY_FILE.
    #[arg(long, global = true, env = "XMCP_ENCRYPTION_KEY", hide_env_values = true, value_parser = secret, help_heading = STORAGE)]
    #[serde(skip)]
    pub encryption_key: Option<SecretString>,
    /// File holding the encryption key (create one with `xmcp gen-key`).
    #[arg(long, global = true, env = "XMCP_ENCRYPTION_KEY_FILE", help_heading = STORAGE)]
    pub encryption_key_file: Option<PathBuf>,
    /// Keys only used to decrypt (comma-separated), during a rotation.
    #[arg(long, global = true, env = "XMCP_PREVIOUS_ENCRYPTION_KEYS", hide_env_values = true, value_parser = secret, help_heading = STORAGE)]
    #[serde(skip)]
    pub previous_encryption_keys: Option<SecretString>,
    /// File holding the previous keys, one per line or comma-separated.
    #[arg(long, global = true, env = "XMCP_PREVIOUS_ENCRYPTION_KEYS_FILE", help_heading = STORAGE)]
    pub previous_encryption_keys_file: Option<PathBuf>,
}

/// How X is reached (or the demo's simulated X).
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct XSettings {
    /// Use a built-in simulated X with demo accounts (no configuration needed).
    #[arg(long, env = "XMCP_DEMO", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new(), help_heading = X)]
    pub demo: Option<bool>,
    /// Your X app's OAuth 2.0 client id: users then sign in with X.
    #[arg(long, env = "XMCP_X_CLIENT_ID", help_heading = X)]
    pub x_client_id: Option<String>,
    /// The X app's client secret; prefer XMCP_X_CLIENT_SECRET_FILE.
    #[arg(long, env = "XMCP_X_CLIENT_SECRET", hide_env_values = true, value_parser = secret, help_heading = X)]
    #[serde(skip)]
    pub x_client_secret: Option<SecretString>,
    /// File holding the X app's client secret.
    #[arg(long, env = "XMCP_X_CLIENT_SECRET_FILE", help_heading = X)]
    pub x_client_secret_file: Option<PathBuf>,
    /// Scopes always requested from X (must include offline.access).
    #[arg(long, env = "XMCP_X_SCOPES", value_delimiter = ',', help_heading = X)]
    pub x_scopes: Option<Vec<String>>,
    /// X's authorize URL (default https://x.com/i/oauth2/authorize).
    #[arg(long, env = "XMCP_X_AUTHORIZE_URL", help_heading = X)]
    pub x_authorize_url: Option<String>,
    /// X's token URL (default https://api.x.com/2/oauth2/token).
    #[arg(long, env = "XMCP_X_TOKEN_URL", help_heading = X)]
    pub x_token_url: Option<String>,
    /// X's revocation URL (default https://api.x.com/2/oauth2/revoke).
    #[arg(long, env = "XMCP_X_REVOKE_URL", help_heading = X)]
    pub x_revoke_url: Option<String>,
    /// X's API base URL (default https://api.x.com).
    #[arg(long, env = "XMCP_X_API_URL", help_heading = X)]
    pub x_api_url: Option<String>,
    /// Refresh X tokens this many seconds before they expire (default 60).
    #[arg(long, env = "XMCP_X_REFRESH_MARGIN", help_heading = X)]
    pub x_refresh_margin: Option<i64>,
}

/// Which of X's operations become tools, and how and at what cost they
/// are called.
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct ToolsSettings {
    /// X's OpenAPI document, a file or URL (default <x-api-url>/2/openapi.json, cached).
    #[arg(long, env = "XMCP_X_OPENAPI", help_heading = X)]
    pub x_openapi: Option<String>,
    /// Only these X operations become tools (operationIds or "METHOD /path", globs allowed).
    #[arg(long, env = "XMCP_TOOLS_ALLOW", value_delimiter = ',', help_heading = X)]
    pub tools_allow: Option<Vec<String>>,
    /// These X operations never become tools (operationIds or "METHOD /path", globs allowed).
    #[arg(long, env = "XMCP_TOOLS_DENY", value_delimiter = ',', help_heading = X)]
    pub tools_deny: Option<Vec<String>>,
    /// Only X operations with these tags become tools (e.g. Posts,Users).
    #[arg(long, env = "XMCP_TOOLS_TAGS", value_delimiter = ',', help_heading = X)]
    pub tools_tags: Option<Vec<String>>,
    /// Toolsets a connection lists when it selects none (default core; all for every tool).
    #[arg(long, env = "XMCP_TOOLS_TOOLSETS", value_delimiter = ',', help_heading = X)]
    pub tools_toolsets: Option<Vec<String>>,
    /// Offer only read-only tools, to every connection.
    #[arg(long, env = "XMCP_TOOLS_READONLY", help_heading = X)]
    pub tools_readonly: Option<bool>,
    /// Longest tool result in characters; longer ones are cut on a record boundary (default 25000).
    #[arg(long, env = "XMCP_TOOLS_MAX_RESULT_CHARS", help_heading = X)]
    pub tools_max_result_chars: Option<usize>,
    /// X's prices, a TOML file like the built-in table (default: the built-in table).
    #[arg(long, env = "XMCP_X_PRICES_FILE", help_heading = X)]
    pub x_prices_file: Option<PathBuf>,
    /// What one user may spend at X per UTC day, in dollars, or "off" (default 1).
    #[arg(long, env = "XMCP_SPEND_CAP_USER", help_heading = X)]
    pub spend_cap_user: Option<String>,
    /// What one OAuth client may spend at X per UTC day, in dollars, or "off" (default off).
    #[arg(long, env = "XMCP_SPEND_CAP_CLIENT", help_heading = X)]
    pub spend_cap_client: Option<String>,
    /// What the whole deployment may spend at X per UTC day, in dollars, or "off" (default off).
    #[arg(long, env = "XMCP_SPEND_CAP_DEPLOYMENT", help_heading = X)]
    pub spend_cap_deployment: Option<String>,
    /// Days the audit trail of calls to X is kept (default 30).
    #[arg(long, env = "XMCP_AUDIT_RETENTION_DAYS", help_heading = X)]
    pub audit_retention_days: Option<i64>,
    /// Seconds within which a write repeated with the same arguments returns the first result (default 60; 0: only with an idempotency key).
    #[arg(long, env = "XMCP_IDEMPOTENCY_WINDOW", help_heading = X)]
    pub idempotency_window: Option<i64>,
    /// The largest media file fetched from a URL for a post, in MB (default 64, at most 512).
    #[arg(long, env = "XMCP_MEDIA_MAX_MB", help_heading = X)]
    pub media_max_mb: Option<u64>,
    /// Also fetch media from private and loopback addresses, and over http (default false).
    #[arg(long, env = "XMCP_MEDIA_ALLOW_PRIVATE", help_heading = X)]
    pub media_allow_private: Option<bool>,
    /// The X app's bearer token, enabling operations X lets only apps call; prefer XMCP_X_BEARER_TOKEN_FILE.
    #[arg(long, env = "XMCP_X_BEARER_TOKEN", hide_env_values = true, value_parser = secret, help_heading = X)]
    #[serde(skip)]
    pub x_bearer_token: Option<SecretString>,
    /// File holding the X app's bearer token.
    #[arg(long, env = "XMCP_X_BEARER_TOKEN_FILE", help_heading = X)]
    pub x_bearer_token_file: Option<PathBuf>,
    /// Longest wait in seconds for X's rate-limit window before answering "retry at" (default 20).
    #[arg(long, env = "XMCP_X_RATE_LIMIT_MAX_WAIT", help_heading = X)]
    pub x_rate_limit_max_wait: Option<i64>,
}

/// The HTTP server: where it listens and what it accepts.
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct ServerSettings {
    /// Address to listen on.
    #[arg(long, env = "XMCP_HOST", help_heading = SERVER)]
    pub host: Option<IpAddr>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "XMCP_PORT", help_heading = SERVER)]
    pub port: Option<u16>,
    /// Public origin clients use, e.g. https://mcp.example.com (the OAuth issuer).
    #[arg(long, env = "XMCP_PUBLIC_URL", help_heading = SERVER)]
    pub public_url: Option<String>,
    /// Let --demo listen on a non-loopback --host or use a non-loopback
    /// --public-url: others can then sign in to it as its demo accounts.
    #[arg(long, env = "XMCP_DEMO_PUBLIC", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new(), help_heading = SERVER)]
    pub demo_public: Option<bool>,
    /// Give MCP clients before 2026-07-28 sessions (`Mcp-Session-Id`), kept
    /// in the database and bound to their user. Answers are JSON either way.
    #[arg(long, env = "XMCP_MCP_STATEFUL", help_heading = SERVER)]
    pub mcp_stateful: Option<bool>,
    /// Extra Host header values accepted on /mcp (comma-separated).
    #[arg(long, env = "XMCP_ALLOWED_HOSTS", value_delimiter = ',', help_heading = SERVER)]
    pub allowed_hosts: Option<Vec<String>>,
    /// Extra browser origins accepted on /mcp (comma-separated, `:*` for any port).
    #[arg(long, env = "XMCP_ALLOWED_ORIGINS", value_delimiter = ',', help_heading = SERVER)]
    pub allowed_origins: Option<Vec<String>>,
    /// Seconds between sweeps of expired rows.
    #[arg(long, env = "XMCP_SWEEP_INTERVAL", help_heading = SERVER)]
    pub sweep_interval: Option<u64>,
    /// Seconds to wait for in-flight requests on shutdown.
    #[arg(long, env = "XMCP_SHUTDOWN_TIMEOUT", help_heading = SERVER)]
    pub shutdown_timeout: Option<u64>,
}

/// The authorization server: what it grants, to which clients, and the
/// local accounts it signs in when no upstream does.
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct AuthServerSettings {
    /// Scopes the authorization server grants (space- or comma-separated).
    #[arg(long, env = "XMCP_SCOPES", value_delimiter = ',', help_heading = AS)]
    pub scopes: Option<Vec<String>>,
    /// Access token lifetime in seconds.
    #[arg(long, env = "XMCP_ACCESS_TOKEN_TTL", help_heading = AS)]
    pub access_token_ttl: Option<i64>,
    /// Access token format: opaque or jwt (RFC 9068, RS256, /jwks.json).
    #[arg(long, env = "XMCP_ACCESS_TOKEN_FORMAT", help_heading = AS)]
    pub access_token_format: Option<String>,
    /// Refresh token lifetime in seconds.
    #[arg(long, env = "XMCP_REFRESH_TOKEN_TTL", help_heading = AS)]
    pub refresh_token_ttl: Option<i64>,
    /// Seconds during which a just-rotated refresh token returns the same successor.
    #[arg(long, env = "XMCP_REFRESH_GRACE", help_heading = AS)]
    pub refresh_grace: Option<i64>,
    /// Allow RFC 7591 dynamic client registration.
    #[arg(long, env = "XMCP_REGISTRATION_ENABLED", help_heading = AS)]
    pub registration_enabled: Option<bool>,
    /// Dynamic registrations accepted per hour from one network (an IPv4 address or an IPv6 /64).
    #[arg(long, env = "XMCP_REGISTRATION_LIMIT_PER_HOUR", help_heading = AS)]
    pub registration_limit_per_hour: Option<i64>,
    /// Seconds after which a registration never used for a token is deleted.
    #[arg(long, env = "XMCP_UNUSED_CLIENT_TTL", help_heading = AS)]
    pub unused_client_ttl: Option<i64>,
    /// Accept Client ID Metadata Document client ids.
    #[arg(long, env = "XMCP_CIMD_ENABLED", help_heading = AS)]
    pub cimd_enabled: Option<bool>,
    /// Allow metadata documents on loopback http URLs (development only).
    #[arg(long, env = "XMCP_CIMD_ALLOW_LOOPBACK", help_heading = AS)]
    pub cimd_allow_loopback: Option<bool>,
    /// Private-use redirect URI schemes of native clients registrations may use, besides reverse-domain ones (default: cursor,vscode,vscode-insiders,vscodium,windsurf,zed).
    #[arg(long, env = "XMCP_REDIRECT_SCHEMES", value_delimiter = ',', help_heading = AS)]
    pub redirect_schemes: Option<Vec<String>>,
    /// Client ids allowed to call /introspect (default: every confidential static client).
    #[arg(long, env = "XMCP_INTROSPECTION_CLIENTS", value_delimiter = ',', help_heading = AS)]
    pub introspection_clients: Option<Vec<String>>,
    /// Path X redirects back to (register <public_url><path> as the X app's callback).
    #[arg(long, env = "XMCP_UPSTREAM_CALLBACK_PATH", help_heading = X)]
    pub upstream_callback_path: Option<String>,
    /// Pre-registered clients (`[[clients]]`, file only).
    #[arg(skip)]
    #[merge(strategy = merge::vec::overwrite_empty)]
    pub clients: Vec<ClientSettings>,
    /// Local accounts (`[[users]]`, file only).
    #[arg(skip)]
    #[merge(strategy = merge::vec::overwrite_empty)]
    pub users: Vec<UserSettings>,
}

/// Sign-in at an OpenID Connect provider instead of X.
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct OidcSettings {
    /// An OpenID Connect provider's issuer: users sign in there instead of at X.
    #[arg(long, env = "XMCP_OIDC_ISSUER", help_heading = OIDC)]
    pub oidc_issuer: Option<String>,
    /// xmcp's client id at the OpenID Connect provider.
    #[arg(long, env = "XMCP_OIDC_CLIENT_ID", help_heading = OIDC)]
    pub oidc_client_id: Option<String>,
    /// The OIDC client secret; prefer XMCP_OIDC_CLIENT_SECRET_FILE.
    #[arg(long, env = "XMCP_OIDC_CLIENT_SECRET", hide_env_values = true, value_parser = secret, help_heading = OIDC)]
    #[serde(skip)]
    pub oidc_client_secret: Option<SecretString>,
    /// File holding the OIDC client secret.
    #[arg(long, env = "XMCP_OIDC_CLIENT_SECRET_FILE", help_heading = OIDC)]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// Scopes requested from the OIDC provider (default: openid profile email).
    #[arg(long, env = "XMCP_OIDC_SCOPES", value_delimiter = ',', help_heading = OIDC)]
    pub oidc_scopes: Option<Vec<String>>,
}

/// Resource-server-only mode: another issuer's tokens are verified here.
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct ExternalSettings {
    /// Resource-server-only mode: the issuer whose access tokens /mcp accepts.
    #[arg(long, env = "XMCP_EXTERNAL_ISSUER", help_heading = RS_ONLY)]
    pub external_issuer: Option<String>,
    /// Verify the external issuer's JWT access tokens with this key set.
    #[arg(long, env = "XMCP_EXTERNAL_JWKS_URL", help_heading = RS_ONLY)]
    pub external_jwks_url: Option<String>,
    /// Or check tokens at this RFC 7662 introspection endpoint.
    #[arg(long, env = "XMCP_EXTERNAL_INTROSPECTION_URL", help_heading = RS_ONLY)]
    pub external_introspection_url: Option<String>,
    /// This server's client id at the external issuer (for introspection).
    #[arg(long, env = "XMCP_EXTERNAL_CLIENT_ID", help_heading = RS_ONLY)]
    pub external_client_id: Option<String>,
    /// The secret of that client id; prefer XMCP_EXTERNAL_CLIENT_SECRET_FILE.
    #[arg(long, env = "XMCP_EXTERNAL_CLIENT_SECRET", hide_env_values = true, value_parser = secret, help_heading = RS_ONLY)]
    #[serde(skip)]
    pub external_client_secret: Option<SecretString>,
    /// File holding the secret of that client id.
    #[arg(long, env = "XMCP_EXTERNAL_CLIENT_SECRET_FILE", help_heading = RS_ONLY)]
    pub external_client_secret_file: Option<PathBuf>,
}

/// Rate limits in front of the authorization server, and `/metrics`.
#[derive(Args, Deserialize, Merge, Default, Clone)]
#[serde(default)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct LimitsSettings {
    /// Requests per minute per client address to each group of
    /// authorization endpoints (default 300; 0 disables).
    #[arg(long, env = "XMCP_RATE_LIMIT_PER_IP", help_heading = LIMITS)]
    pub rate_limit_per_ip: Option<u32>,
    /// Requests per minute per OAuth client to each group of authorization
    /// endpoints (default 600; 0 disables).
    #[arg(long, env = "XMCP_RATE_LIMIT_PER_CLIENT", help_heading = LIMITS)]
    pub rate_limit_per_client: Option<u32>,
    /// Proxies (IPs or CIDR ranges, comma-separated) whose X-Forwarded-For
    /// names the client address.
    #[arg(long, env = "XMCP_TRUSTED_PROXIES", value_delimiter = ',', help_heading = LIMITS)]
    pub trusted_proxies: Option<Vec<String>>,
    /// Bearer token required on /metrics; prefer XMCP_METRICS_TOKEN_FILE.
    #[arg(long, env = "XMCP_METRICS_TOKEN", hide_env_values = true, value_parser = secret, help_heading = LIMITS)]
    #[serde(skip)]
    pub metrics_token: Option<SecretString>,
    /// File holding the /metrics bearer token.
    #[arg(long, env = "XMCP_METRICS_TOKEN_FILE", help_heading = LIMITS)]
    pub metrics_token_file: Option<PathBuf>,
}

/// Declares [`Settings`] from its list of groups, so that the list is
/// written once: the struct (flags and merge), reading each group from a
/// TOML file, and the keys the file accepts all follow it.
macro_rules! settings_groups {
    ($($field:ident: $group:ty),* $(,)?) => {
        /// Every setting, each optional, as one layer gives it (the TOML
        /// file, or the flags and environment variables). [`Merge::merge`]
        /// lays one layer under another: `flags.merge(file)` keeps each
        /// setting the flags give and takes the file's for the others.
        #[derive(Args, Merge, Default, Clone)]
        pub struct Settings {
            $(
                #[command(flatten)]
                pub $field: $group,
            )*
        }

        impl Settings {
            /// Each group read from the same TOML document.
            fn groups_from_toml(text: &str) -> Result<Self, toml::de::Error> {
                Ok(Settings {
                    $($field: toml::from_str(text)?,)*
                })
            }

            /// The fields of every group, in order.
            fn group_keys() -> Vec<&'static str> {
                use serde_aux::serde_introspection::serde_introspect as fields;
                [$(fields::<$group>(),)*].concat()
            }
        }
    };
}

settings_groups! {
    log: LogSettings,
    store: StoreSettings,
    keys: KeySettings,
    x: XSettings,
    tools: ToolsSettings,
    server: ServerSettings,
    auth: AuthServerSettings,
    oidc: OidcSettings,
    external: ExternalSettings,
    limits: LimitsSettings,
}

impl Settings {
    /// Read a TOML file layer.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read config file {}: {e}", path.display())))?;
        Self::from_toml(&text)
            .map_err(|e| err(format!("config file {} is invalid: {e}", path.display())))
    }

    /// A TOML document as a layer: each group reads its keys from the
    /// document (so an error points at the value), and a key no group
    /// reads is refused, with where it is and every key there is.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let found: BTreeMap<toml::Spanned<String>, IgnoredAny> =
            toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(key) = found
            .keys()
            .find(|k| !Self::keys().contains(&k.get_ref().as_str()))
        {
            let before = &text[..key.span().start];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let key = key.get_ref();
            let hint = if Self::is_secret(key) {
                format!(
                    "a secret is not read from this file: set `{key}_file` to a file holding it, or XMCP_{}",
                    key.to_uppercase()
                )
            } else {
                let known: Vec<String> = Self::keys().iter().map(|k| format!("`{k}`")).collect();
                format!("expected one of {}", known.join(", "))
            };
            return Err(format!(
                "TOML parse error at line {line}, column {column}: unknown field `{key}`, {hint}"
            ));
        }
        Self::groups_from_toml(text).map_err(|e| e.to_string())
    }

    /// Whether `name` is a secret: a setting a flag and a variable give
    /// but the file does not.
    fn is_secret(name: &str) -> bool {
        static SECRETS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
            Settings::augment_args(clap::Command::new("xmcp"))
                .get_arguments()
                .map(|a| a.get_id().to_string())
                .filter(|id| !Settings::keys().contains(&id.as_str()))
                .collect()
        });
        SECRETS.iter().any(|s| s == name)
    }

    /// Every key the TOML file accepts, group by group.
    pub fn keys() -> &'static [&'static str] {
        static KEYS: std::sync::LazyLock<Vec<&'static str>> =
            std::sync::LazyLock::new(Settings::group_keys);
        &KEYS
    }
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
