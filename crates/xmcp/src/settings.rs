//! The settings flags, in three groups so that each command takes, and
//! lists in `--help`, only the ones it uses:
//!
//! * [`StoreArgs`]: configuration file, logging, database and encryption
//!   keys. Every command that opens the store (`admin`, `bridge`).
//! * [`XArgs`]: how X is reached and which of its operations are tools.
//!   With the store, the local commands (`login`, `logout`, `status`,
//!   `stdio`).
//! * [`HttpArgs`]: the HTTP server and its authorization server. With the
//!   other two, [`ServeArgs`] (`serve`, `check-config`, `rotate-key`,
//!   `rotate-signing-key`).
//!
//! Each flag also reads an `XMCP_*` variable; both override the TOML file
//! given by `--config`, which may hold any setting.

use clap::Args;
use secrecy::SecretString;
use std::net::IpAddr;
use std::path::PathBuf;
use xmcp_server::Config;
use xmcp_server::config::{LogFormat, Settings};

/// `--help` headings.
const GENERAL: &str = "General";
const STORAGE: &str = "Storage and encryption";
const X: &str = "X";
const SERVER: &str = "HTTP server";
const AS: &str = "Authorization server";
const OIDC: &str = "Sign-in with OpenID Connect instead of X";
const RS_ONLY: &str = "Resource server only (tokens from another issuer)";
const LIMITS: &str = "Rate limits and metrics";

// No `Debug` on these types: they hold the raw encryption key, secrets and a
// database URL that may carry a password.

/// Where state lives and how it is sealed. Global, so that they may also
/// follow a subcommand: `xmcp admin users --data-dir DIR`.
#[derive(Args)]
pub struct StoreArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "XMCP_CONFIG", help_heading = GENERAL)]
    config: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "XMCP_LOG_FORMAT", help_heading = GENERAL)]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `xmcp=debug,info`.
    #[arg(long, global = true, env = "XMCP_LOG", help_heading = GENERAL)]
    log: Option<String>,
    /// Directory for the SQLite database and the local key file.
    #[arg(long, global = true, env = "XMCP_DATA_DIR", help_heading = STORAGE)]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://... (default: SQLite in the data dir).
    #[arg(long, global = true, env = "XMCP_DATABASE_URL", hide_env_values = true, help_heading = STORAGE)]
    database_url: Option<String>,
    /// Database connections this process opens at most (default 10).
    #[arg(long, global = true, env = "XMCP_DATABASE_MAX_CONNECTIONS", help_heading = STORAGE)]
    database_max_connections: Option<u32>,
    /// Encryption key (`id:base64url`); prefer XMCP_ENCRYPTION_KEY_FILE.
    #[arg(long, global = true, env = "XMCP_ENCRYPTION_KEY", hide_env_values = true, help_heading = STORAGE)]
    encryption_key: Option<String>,
    /// File holding the encryption key (create one with `xmcp gen-key`).
    #[arg(long, global = true, env = "XMCP_ENCRYPTION_KEY_FILE", help_heading = STORAGE)]
    encryption_key_file: Option<PathBuf>,
    /// Keys only used to decrypt (comma-separated), during a rotation.
    #[arg(long, global = true, env = "XMCP_PREVIOUS_ENCRYPTION_KEYS", hide_env_values = true, help_heading = STORAGE)]
    previous_encryption_keys: Option<String>,
    /// File holding the previous keys, one per line or comma-separated.
    #[arg(long, global = true, env = "XMCP_PREVIOUS_ENCRYPTION_KEYS_FILE", help_heading = STORAGE)]
    previous_encryption_keys_file: Option<PathBuf>,
}

/// How X is reached, and which of its operations become tools.
#[derive(Args)]
pub struct XArgs {
    /// Use a built-in simulated X with demo accounts (no configuration needed).
    #[arg(long, env = "XMCP_DEMO", help_heading = X)]
    demo: bool,
    /// Your X app's OAuth 2.0 client id: users then sign in with X.
    #[arg(long, env = "XMCP_X_CLIENT_ID", help_heading = X)]
    x_client_id: Option<String>,
    /// The X app's client secret; prefer XMCP_X_CLIENT_SECRET_FILE.
    #[arg(long, env = "XMCP_X_CLIENT_SECRET", hide_env_values = true, help_heading = X)]
    x_client_secret: Option<String>,
    /// File holding the X app's client secret.
    #[arg(long, env = "XMCP_X_CLIENT_SECRET_FILE", help_heading = X)]
    x_client_secret_file: Option<PathBuf>,
    /// Scopes always requested from X (must include offline.access).
    #[arg(long, env = "XMCP_X_SCOPES", value_delimiter = ',', help_heading = X)]
    x_scopes: Option<Vec<String>>,
    /// X's authorize URL (default https://x.com/i/oauth2/authorize).
    #[arg(long, env = "XMCP_X_AUTHORIZE_URL", help_heading = X)]
    x_authorize_url: Option<String>,
    /// X's token URL (default https://api.x.com/2/oauth2/token).
    #[arg(long, env = "XMCP_X_TOKEN_URL", help_heading = X)]
    x_token_url: Option<String>,
    /// X's revocation URL (default https://api.x.com/2/oauth2/revoke).
    #[arg(long, env = "XMCP_X_REVOKE_URL", help_heading = X)]
    x_revoke_url: Option<String>,
    /// X's API base URL (default https://api.x.com).
    #[arg(long, env = "XMCP_X_API_URL", help_heading = X)]
    x_api_url: Option<String>,
    /// Refresh X tokens this many seconds before they expire (default 60).
    #[arg(long, env = "XMCP_X_REFRESH_MARGIN", help_heading = X)]
    x_refresh_margin: Option<i64>,
    /// X's OpenAPI document, a file or URL (default <x-api-url>/2/openapi.json, cached).
    #[arg(long, env = "XMCP_X_OPENAPI", help_heading = X)]
    x_openapi: Option<String>,
    /// Only these X operations become tools (operationIds or "METHOD /path", globs allowed).
    #[arg(long, env = "XMCP_TOOLS_ALLOW", value_delimiter = ',', help_heading = X)]
    tools_allow: Option<Vec<String>>,
    /// These X operations never become tools (operationIds or "METHOD /path", globs allowed).
    #[arg(long, env = "XMCP_TOOLS_DENY", value_delimiter = ',', help_heading = X)]
    tools_deny: Option<Vec<String>>,
    /// Only X operations with these tags become tools (e.g. Posts,Users).
    #[arg(long, env = "XMCP_TOOLS_TAGS", value_delimiter = ',', help_heading = X)]
    tools_tags: Option<Vec<String>>,
    /// Toolsets a connection lists when it selects none (default core; all for every tool).
    #[arg(long, env = "XMCP_TOOLS_TOOLSETS", value_delimiter = ',', help_heading = X)]
    tools_toolsets: Option<Vec<String>>,
    /// Offer only read-only tools, to every connection.
    #[arg(long, env = "XMCP_TOOLS_READONLY", help_heading = X)]
    tools_readonly: Option<bool>,
    /// Longest tool result in characters; longer ones are cut on a record boundary (default 25000).
    #[arg(long, env = "XMCP_TOOLS_MAX_RESULT_CHARS", help_heading = X)]
    tools_max_result_chars: Option<usize>,
    /// X's prices, a TOML file like the built-in table (default: the built-in table).
    #[arg(long, env = "XMCP_X_PRICES_FILE", help_heading = X)]
    x_prices_file: Option<PathBuf>,
    /// What one user may spend at X per UTC day, in dollars, or "off" (default 1).
    #[arg(long, env = "XMCP_SPEND_CAP_USER", help_heading = X)]
    spend_cap_user: Option<String>,
    /// What one OAuth client may spend at X per UTC day, in dollars, or "off" (default off).
    #[arg(long, env = "XMCP_SPEND_CAP_CLIENT", help_heading = X)]
    spend_cap_client: Option<String>,
    /// What the whole deployment may spend at X per UTC day, in dollars, or "off" (default off).
    #[arg(long, env = "XMCP_SPEND_CAP_DEPLOYMENT", help_heading = X)]
    spend_cap_deployment: Option<String>,
    /// Days the audit trail of calls to X is kept (default 30).
    #[arg(long, env = "XMCP_AUDIT_RETENTION_DAYS", help_heading = X)]
    audit_retention_days: Option<i64>,
    /// Seconds within which a write repeated with the same arguments returns the first result (default 60; 0: only with an idempotency key).
    #[arg(long, env = "XMCP_IDEMPOTENCY_WINDOW", help_heading = X)]
    idempotency_window: Option<i64>,
    /// The largest media file fetched from a URL for a post, in MB (default 64, at most 512).
    #[arg(long, env = "XMCP_MEDIA_MAX_MB", help_heading = X)]
    media_max_mb: Option<u64>,
    /// Also fetch media from private and loopback addresses, and over http (default false).
    #[arg(long, env = "XMCP_MEDIA_ALLOW_PRIVATE", help_heading = X)]
    media_allow_private: Option<bool>,
    /// The X app's bearer token, enabling operations X lets only apps call; prefer XMCP_X_BEARER_TOKEN_FILE.
    #[arg(long, env = "XMCP_X_BEARER_TOKEN", hide_env_values = true, help_heading = X)]
    x_bearer_token: Option<String>,
    /// File holding the X app's bearer token.
    #[arg(long, env = "XMCP_X_BEARER_TOKEN_FILE", help_heading = X)]
    x_bearer_token_file: Option<PathBuf>,
    /// Longest wait in seconds for X's rate-limit window before answering "retry at" (default 20).
    #[arg(long, env = "XMCP_X_RATE_LIMIT_MAX_WAIT", help_heading = X)]
    x_rate_limit_max_wait: Option<i64>,
}

/// The HTTP server: where it listens, its authorization server, how users
/// sign in through it, and the limits in front of it.
#[derive(Args)]
pub struct HttpArgs {
    /// Address to listen on.
    #[arg(long, env = "XMCP_HOST", help_heading = SERVER)]
    host: Option<IpAddr>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "XMCP_PORT", help_heading = SERVER)]
    port: Option<u16>,
    /// Public origin clients use, e.g. https://mcp.example.com (the OAuth issuer).
    #[arg(long, env = "XMCP_PUBLIC_URL", help_heading = SERVER)]
    public_url: Option<String>,
    /// Let --demo listen on a non-loopback --host or use a non-loopback
    /// --public-url: others can then sign in to it as its demo accounts.
    #[arg(long, env = "XMCP_DEMO_PUBLIC", help_heading = SERVER)]
    demo_public: bool,
    /// Give MCP clients before 2026-07-28 sessions (`Mcp-Session-Id`), kept
    /// in the database and bound to their user. Answers are JSON either way.
    #[arg(long, env = "XMCP_MCP_STATEFUL", help_heading = SERVER)]
    mcp_stateful: Option<bool>,
    /// Extra Host header values accepted on /mcp (comma-separated).
    #[arg(long, env = "XMCP_ALLOWED_HOSTS", value_delimiter = ',', help_heading = SERVER)]
    allowed_hosts: Option<Vec<String>>,
    /// Extra browser origins accepted on /mcp (comma-separated, `:*` for any port).
    #[arg(long, env = "XMCP_ALLOWED_ORIGINS", value_delimiter = ',', help_heading = SERVER)]
    allowed_origins: Option<Vec<String>>,
    /// Seconds between sweeps of expired rows.
    #[arg(long, env = "XMCP_SWEEP_INTERVAL", help_heading = SERVER)]
    sweep_interval: Option<u64>,
    /// Seconds to wait for in-flight requests on shutdown.
    #[arg(long, env = "XMCP_SHUTDOWN_TIMEOUT", help_heading = SERVER)]
    shutdown_timeout: Option<u64>,
    /// Scopes the authorization server grants (space- or comma-separated).
    #[arg(long, env = "XMCP_SCOPES", value_delimiter = ',', help_heading = AS)]
    scopes: Option<Vec<String>>,
    /// Access token lifetime in seconds.
    #[arg(long, env = "XMCP_ACCESS_TOKEN_TTL", help_heading = AS)]
    access_token_ttl: Option<i64>,
    /// Access token format: opaque or jwt (RFC 9068, RS256, /jwks.json).
    #[arg(long, env = "XMCP_ACCESS_TOKEN_FORMAT", help_heading = AS)]
    access_token_format: Option<String>,
    /// Refresh token lifetime in seconds.
    #[arg(long, env = "XMCP_REFRESH_TOKEN_TTL", help_heading = AS)]
    refresh_token_ttl: Option<i64>,
    /// Seconds during which a just-rotated refresh token returns the same successor.
    #[arg(long, env = "XMCP_REFRESH_GRACE", help_heading = AS)]
    refresh_grace: Option<i64>,
    /// Allow RFC 7591 dynamic client registration.
    #[arg(long, env = "XMCP_REGISTRATION_ENABLED", help_heading = AS)]
    registration_enabled: Option<bool>,
    /// Dynamic registrations accepted per hour from one network (an IPv4 address or an IPv6 /64).
    #[arg(long, env = "XMCP_REGISTRATION_LIMIT_PER_HOUR", help_heading = AS)]
    registration_limit_per_hour: Option<i64>,
    /// Seconds after which a registration never used for a token is deleted.
    #[arg(long, env = "XMCP_UNUSED_CLIENT_TTL", help_heading = AS)]
    unused_client_ttl: Option<i64>,
    /// Accept Client ID Metadata Document client ids.
    #[arg(long, env = "XMCP_CIMD_ENABLED", help_heading = AS)]
    cimd_enabled: Option<bool>,
    /// Allow metadata documents on loopback http URLs (development only).
    #[arg(long, env = "XMCP_CIMD_ALLOW_LOOPBACK", help_heading = AS)]
    cimd_allow_loopback: Option<bool>,
    /// Private-use redirect URI schemes of native clients registrations may use, besides reverse-domain ones (default: cursor,vscode,vscode-insiders,vscodium,windsurf,zed).
    #[arg(long, env = "XMCP_REDIRECT_SCHEMES", value_delimiter = ',', help_heading = AS)]
    redirect_schemes: Option<Vec<String>>,
    /// Path X redirects back to (register <public_url><path> as the X app's callback).
    #[arg(long, env = "XMCP_UPSTREAM_CALLBACK_PATH", help_heading = X)]
    upstream_callback_path: Option<String>,
    /// An OpenID Connect provider's issuer: users sign in there instead of at X.
    #[arg(long, env = "XMCP_OIDC_ISSUER", help_heading = OIDC)]
    oidc_issuer: Option<String>,
    /// xmcp's client id at the OpenID Connect provider.
    #[arg(long, env = "XMCP_OIDC_CLIENT_ID", help_heading = OIDC)]
    oidc_client_id: Option<String>,
    /// The OIDC client secret; prefer XMCP_OIDC_CLIENT_SECRET_FILE.
    #[arg(long, env = "XMCP_OIDC_CLIENT_SECRET", hide_env_values = true, help_heading = OIDC)]
    oidc_client_secret: Option<String>,
    /// File holding the OIDC client secret.
    #[arg(long, env = "XMCP_OIDC_CLIENT_SECRET_FILE", help_heading = OIDC)]
    oidc_client_secret_file: Option<PathBuf>,
    /// Scopes requested from the OIDC provider (default: openid profile email).
    #[arg(long, env = "XMCP_OIDC_SCOPES", value_delimiter = ',', help_heading = OIDC)]
    oidc_scopes: Option<Vec<String>>,
    /// Resource-server-only mode: the issuer whose access tokens /mcp accepts.
    #[arg(long, env = "XMCP_EXTERNAL_ISSUER", help_heading = RS_ONLY)]
    external_issuer: Option<String>,
    /// Verify the external issuer's JWT access tokens with this key set.
    #[arg(long, env = "XMCP_EXTERNAL_JWKS_URL", help_heading = RS_ONLY)]
    external_jwks_url: Option<String>,
    /// Or check tokens at this RFC 7662 introspection endpoint.
    #[arg(long, env = "XMCP_EXTERNAL_INTROSPECTION_URL", help_heading = RS_ONLY)]
    external_introspection_url: Option<String>,
    /// This server's client id at the external issuer (for introspection).
    #[arg(long, env = "XMCP_EXTERNAL_CLIENT_ID", help_heading = RS_ONLY)]
    external_client_id: Option<String>,
    /// The secret of that client id; prefer XMCP_EXTERNAL_CLIENT_SECRET_FILE.
    #[arg(long, env = "XMCP_EXTERNAL_CLIENT_SECRET", hide_env_values = true, help_heading = RS_ONLY)]
    external_client_secret: Option<String>,
    /// File holding the secret of that client id.
    #[arg(long, env = "XMCP_EXTERNAL_CLIENT_SECRET_FILE", help_heading = RS_ONLY)]
    external_client_secret_file: Option<PathBuf>,
    /// Requests per minute per client address to each group of
    /// authorization endpoints (default 300; 0 disables).
    #[arg(long, env = "XMCP_RATE_LIMIT_PER_IP", help_heading = LIMITS)]
    rate_limit_per_ip: Option<u32>,
    /// Requests per minute per OAuth client to each group of authorization
    /// endpoints (default 600; 0 disables).
    #[arg(long, env = "XMCP_RATE_LIMIT_PER_CLIENT", help_heading = LIMITS)]
    rate_limit_per_client: Option<u32>,
    /// Proxies (IPs or CIDR ranges, comma-separated) whose X-Forwarded-For
    /// names the client address.
    #[arg(long, env = "XMCP_TRUSTED_PROXIES", value_delimiter = ',', help_heading = LIMITS)]
    trusted_proxies: Option<Vec<String>>,
    /// Bearer token required on /metrics; prefer XMCP_METRICS_TOKEN_FILE.
    #[arg(long, env = "XMCP_METRICS_TOKEN", hide_env_values = true, help_heading = LIMITS)]
    metrics_token: Option<String>,
    /// File holding the /metrics bearer token.
    #[arg(long, env = "XMCP_METRICS_TOKEN_FILE", help_heading = LIMITS)]
    metrics_token_file: Option<PathBuf>,
}

/// Every setting: `serve` and the commands that must read exactly what it
/// reads.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    x: XArgs,
    #[command(flatten)]
    http: HttpArgs,
}

/// The settings of the local commands: the store and X.
#[derive(Args)]
pub struct LocalSettings {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    x: XArgs,
}

impl StoreArgs {
    fn apply(&self, s: &mut Settings) {
        s.log_format = self.log_format;
        s.log = self.log.clone();
        s.data_dir = self.data_dir.clone();
        s.database_url = self.database_url.clone();
        s.database_max_connections = self.database_max_connections;
        s.encryption_key = self.encryption_key.clone().map(SecretString::from);
        s.encryption_key_file = self.encryption_key_file.clone();
        s.previous_encryption_keys = self
            .previous_encryption_keys
            .clone()
            .map(SecretString::from);
        s.previous_encryption_keys_file = self.previous_encryption_keys_file.clone();
    }

    /// The configuration file, then `overrides` over it, validated.
    fn resolve(&self, overrides: Settings) -> anyhow::Result<Config> {
        let file = self
            .config
            .as_deref()
            .map(Settings::from_file)
            .transpose()?;
        Ok(Config::resolve(file, overrides)?)
    }

    /// The configuration of a command that only opens the store: nobody
    /// signs in here, so no way to sign in is required.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut s = Settings::default();
        self.apply(&mut s);
        s.demo = Some(true);
        // Nothing is served: the demo's exposure check has nothing to say
        // about the host or public URL of a configuration file.
        s.demo_public = Some(true);
        self.resolve(s)
    }
}

impl XArgs {
    fn apply(&self, s: &mut Settings) {
        s.demo = self.demo.then_some(true);
        s.x_client_id = self.x_client_id.clone();
        s.x_client_secret = self.x_client_secret.clone().map(SecretString::from);
        s.x_client_secret_file = self.x_client_secret_file.clone();
        s.x_scopes = self.x_scopes.clone();
        s.x_authorize_url = self.x_authorize_url.clone();
        s.x_token_url = self.x_token_url.clone();
        s.x_revoke_url = self.x_revoke_url.clone();
        s.x_api_url = self.x_api_url.clone();
        s.x_refresh_margin = self.x_refresh_margin;
        s.x_openapi = self.x_openapi.clone();
        s.tools_allow = self.tools_allow.clone();
        s.tools_deny = self.tools_deny.clone();
        s.tools_tags = self.tools_tags.clone();
        s.tools_toolsets = self.tools_toolsets.clone();
        s.tools_readonly = self.tools_readonly;
        s.tools_max_result_chars = self.tools_max_result_chars;
        s.x_prices_file = self.x_prices_file.clone();
        s.spend_cap_user = self.spend_cap_user.clone();
        s.spend_cap_client = self.spend_cap_client.clone();
        s.spend_cap_deployment = self.spend_cap_deployment.clone();
        s.audit_retention_days = self.audit_retention_days;
        s.idempotency_window = self.idempotency_window;
        s.media_max_mb = self.media_max_mb;
        s.media_allow_private = self.media_allow_private;
        s.x_bearer_token = self.x_bearer_token.clone().map(SecretString::from);
        s.x_bearer_token_file = self.x_bearer_token_file.clone();
        s.x_rate_limit_max_wait = self.x_rate_limit_max_wait;
    }
}

impl HttpArgs {
    fn apply(&self, s: &mut Settings) {
        s.host = self.host;
        s.port = self.port;
        s.public_url = self.public_url.clone();
        s.demo_public = self.demo_public.then_some(true);
        s.mcp_stateful = self.mcp_stateful;
        s.allowed_hosts = self.allowed_hosts.clone();
        s.allowed_origins = self.allowed_origins.clone();
        s.sweep_interval = self.sweep_interval;
        s.shutdown_timeout = self.shutdown_timeout;
        s.scopes = self.scopes.clone();
        s.access_token_ttl = self.access_token_ttl;
        s.access_token_format = self.access_token_format.clone();
        s.refresh_token_ttl = self.refresh_token_ttl;
        s.refresh_grace = self.refresh_grace;
        s.registration_enabled = self.registration_enabled;
        s.registration_limit_per_hour = self.registration_limit_per_hour;
        s.unused_client_ttl = self.unused_client_ttl;
        s.cimd_enabled = self.cimd_enabled;
        s.cimd_allow_loopback = self.cimd_allow_loopback;
        s.redirect_schemes = self.redirect_schemes.clone();
        s.upstream_callback_path = self.upstream_callback_path.clone();
        s.oidc_issuer = self.oidc_issuer.clone();
        s.oidc_client_id = self.oidc_client_id.clone();
        s.oidc_client_secret = self.oidc_client_secret.clone().map(SecretString::from);
        s.oidc_client_secret_file = self.oidc_client_secret_file.clone();
        s.oidc_scopes = self.oidc_scopes.clone();
        s.external_issuer = self.external_issuer.clone();
        s.external_jwks_url = self.external_jwks_url.clone();
        s.external_introspection_url = self.external_introspection_url.clone();
        s.external_client_id = self.external_client_id.clone();
        s.external_client_secret = self.external_client_secret.clone().map(SecretString::from);
        s.external_client_secret_file = self.external_client_secret_file.clone();
        s.rate_limit_per_ip = self.rate_limit_per_ip;
        s.rate_limit_per_client = self.rate_limit_per_client;
        s.trusted_proxies = self.trusted_proxies.clone();
        s.metrics_token = self.metrics_token.clone().map(SecretString::from);
        s.metrics_token_file = self.metrics_token_file.clone();
    }
}

impl ServeArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut s = Settings::default();
        self.store.apply(&mut s);
        self.x.apply(&mut s);
        self.http.apply(&mut s);
        self.store.resolve(s)
    }
}

impl LocalSettings {
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut s = Settings::default();
        self.store.apply(&mut s);
        self.x.apply(&mut s);
        // The local commands listen on loopback only, whatever a
        // configuration file says about the HTTP server.
        s.demo_public = Some(true);
        self.store.resolve(s)
    }
}
