//! The `xmcp` command. Parses arguments and calls into `xmcp-server`; every
//! command is one `run_*` function.

mod admin;
mod bench;
mod local;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use xmcp_server::config::{LogFormat, Settings};
use xmcp_server::{App, Config};

/// jemalloc rather than glibc's malloc. Under load, glibc's arenas
/// contend: tokio moves tasks between worker threads and sqlx hands rows
/// across its database thread, so memory allocated on one thread is freed on
/// another, and a profile of `tools/call` showed a fifth of the CPU in
/// malloc and free, much of it waiting on arena locks. `xmcp bench`: about
/// +40% requests per second at concurrency 16 and +60% at 64, for about
/// 1 MiB more idle memory (mimalloc was as fast but cost 8 MiB).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// No `Debug` on the argument types: they hold the raw encryption key and a
// database URL that may carry a password.
#[derive(Parser)]
#[command(
    name = "xmcp",
    version,
    about = "The X API as an MCP server, with a built-in OAuth 2.1 authorization server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (OAuth authorization server + MCP endpoint).
    Serve(ServeArgs),
    /// Run the simulated X (OAuth 2.0 + API v2 subset) on its own, e.g. as
    /// the upstream of a normally configured `xmcp serve`.
    Sandbox(SandboxArgs),
    /// Validate the configuration exactly as `serve` would, then exit.
    CheckConfig(ServeArgs),
    /// Print a new random encryption key (`id:base64url`).
    GenKey {
        /// Key id (letters, digits, `-`, `_`); random if omitted.
        #[arg(long)]
        id: Option<String>,
    },
    /// Re-encrypt every stored upstream credential under the active key.
    ///
    /// With a configured key: deploy the new key as XMCP_ENCRYPTION_KEY and
    /// the old one in XMCP_PREVIOUS_ENCRYPTION_KEYS on every instance, run
    /// this once, then remove the previous key. With the local key file: stop
    /// the server, run this; a new key is generated and the file updated.
    RotateKey(ServeArgs),
    /// Make a new JWT signing key the active one (older keys stay published
    /// in /jwks.json until tokens they signed have expired).
    RotateSigningKey(ServeArgs),
    /// Hash a password (read from stdin) for a `[[users]]` entry.
    HashPassword,
    /// Measure authenticated tools/call throughput and latency on this machine.
    Bench(bench::BenchArgs),
    /// List the tools an X OpenAPI document gives, and the operations that
    /// are not tools with the reason.
    Tools(ToolsArgs),
    /// Sign in to X in the browser (loopback callback) for `xmcp stdio`.
    Login(local::LoginArgs),
    /// Revoke the local X sign-in at X and delete its tokens.
    Logout(local::LocalArgs),
    /// Show who is signed in locally, the granted scopes and token expiry.
    Status(local::StatusArgs),
    /// Serve MCP over stdio, acting for the person signed in with `xmcp login`.
    Stdio(local::LocalArgs),
    /// Serve MCP over stdio by forwarding to a remote MCP server, doing its
    /// OAuth (for clients that cannot).
    Bridge(local::BridgeArgs),
    /// Operator commands: list and revoke users, clients and grants; purge
    /// expired rows; back up the SQLite store.
    Admin(admin::AdminArgs),
}

#[derive(Args)]
struct ToolsArgs {
    /// The OpenAPI document (a file).
    #[arg(long, env = "XMCP_X_OPENAPI")]
    openapi: PathBuf,
    /// Only these operations (operationIds or "METHOD /path", globs allowed).
    #[arg(long, env = "XMCP_TOOLS_ALLOW", value_delimiter = ',')]
    allow: Vec<String>,
    /// Never these operations.
    #[arg(long, env = "XMCP_TOOLS_DENY", value_delimiter = ',')]
    deny: Vec<String>,
    /// Only operations with these tags.
    #[arg(long, env = "XMCP_TOOLS_TAGS", value_delimiter = ',')]
    tags: Vec<String>,
    /// As if an app bearer token were configured (app-only operations become tools).
    #[arg(long)]
    app_token: bool,
    /// Print the MCP tool definitions as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--help` headings of the serve settings.
const SERVER: &str = "Server";
const STORAGE: &str = "Storage and encryption";
const AS: &str = "Authorization server";
const X: &str = "X";
const OIDC: &str = "Sign-in with OpenID Connect instead of X";
const RS_ONLY: &str = "Resource server only (tokens from another issuer)";
const LIMITS: &str = "Rate limits and metrics";

/// Every setting of `serve`. Each flag also reads an `XMCP_*` variable; both
/// override the TOML file given by `--config`.
#[derive(Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "XMCP_CONFIG", help_heading = SERVER)]
    config: Option<PathBuf>,
    /// Try xmcp with demo accounts (no configuration needed).
    #[arg(long, env = "XMCP_DEMO", help_heading = SERVER)]
    demo: bool,
    /// Address to listen on.
    #[arg(long, env = "XMCP_HOST", help_heading = SERVER)]
    host: Option<IpAddr>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "XMCP_PORT", help_heading = SERVER)]
    port: Option<u16>,
    /// Public origin clients use, e.g. https://mcp.example.com (the OAuth issuer).
    #[arg(long, env = "XMCP_PUBLIC_URL", help_heading = SERVER)]
    public_url: Option<String>,
    /// Directory for the SQLite database and the local key file.
    #[arg(long, env = "XMCP_DATA_DIR", help_heading = SERVER)]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://... (default: SQLite in the data dir).
    #[arg(long, env = "XMCP_DATABASE_URL", hide_env_values = true, help_heading = STORAGE)]
    database_url: Option<String>,
    #[arg(long, env = "XMCP_DATABASE_MAX_CONNECTIONS", help_heading = STORAGE)]
    database_max_connections: Option<u32>,
    /// Log format: text or json.
    #[arg(long, env = "XMCP_LOG_FORMAT", help_heading = SERVER)]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `xmcp=debug,info`.
    #[arg(long, env = "XMCP_LOG", help_heading = SERVER)]
    log: Option<String>,
    /// Serve MCP with sessions (stateful) instead of stateless JSON.
    #[arg(long, env = "XMCP_MCP_STATEFUL", help_heading = SERVER)]
    mcp_stateful: Option<bool>,
    /// Extra Host header values accepted on /mcp (comma-separated).
    #[arg(long, env = "XMCP_ALLOWED_HOSTS", value_delimiter = ',', help_heading = SERVER)]
    allowed_hosts: Option<Vec<String>>,
    /// Extra browser origins accepted on /mcp (comma-separated, `:*` for any port).
    #[arg(long, env = "XMCP_ALLOWED_ORIGINS", value_delimiter = ',', help_heading = SERVER)]
    allowed_origins: Option<Vec<String>>,
    /// Encryption key (`id:base64url`); prefer XMCP_ENCRYPTION_KEY_FILE.
    #[arg(long, env = "XMCP_ENCRYPTION_KEY", hide_env_values = true, help_heading = STORAGE)]
    encryption_key: Option<String>,
    #[arg(long, env = "XMCP_ENCRYPTION_KEY_FILE", help_heading = STORAGE)]
    encryption_key_file: Option<PathBuf>,
    /// Keys only used to decrypt (comma-separated), during a rotation.
    #[arg(long, env = "XMCP_PREVIOUS_ENCRYPTION_KEYS", hide_env_values = true, help_heading = STORAGE)]
    previous_encryption_keys: Option<String>,
    #[arg(long, env = "XMCP_PREVIOUS_ENCRYPTION_KEYS_FILE", help_heading = STORAGE)]
    previous_encryption_keys_file: Option<PathBuf>,
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
    /// Seconds between sweeps of expired rows.
    #[arg(long, env = "XMCP_SWEEP_INTERVAL", help_heading = SERVER)]
    sweep_interval: Option<u64>,
    /// Seconds to wait for in-flight requests on shutdown.
    #[arg(long, env = "XMCP_SHUTDOWN_TIMEOUT", help_heading = SERVER)]
    shutdown_timeout: Option<u64>,
    /// Your X app's OAuth 2.0 client id: users then sign in with X.
    #[arg(long, env = "XMCP_X_CLIENT_ID", help_heading = X)]
    x_client_id: Option<String>,
    /// The X app's client secret; prefer XMCP_X_CLIENT_SECRET_FILE.
    #[arg(long, env = "XMCP_X_CLIENT_SECRET", hide_env_values = true, help_heading = X)]
    x_client_secret: Option<String>,
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
    /// Path X redirects back to (register <public_url><path> as the X app's callback).
    #[arg(long, env = "XMCP_UPSTREAM_CALLBACK_PATH", help_heading = X)]
    upstream_callback_path: Option<String>,
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
    /// The X app's bearer token, enabling operations X lets only apps call; prefer XMCP_X_BEARER_TOKEN_FILE.
    #[arg(long, env = "XMCP_X_BEARER_TOKEN", hide_env_values = true, help_heading = X)]
    x_bearer_token: Option<String>,
    #[arg(long, env = "XMCP_X_BEARER_TOKEN_FILE", help_heading = X)]
    x_bearer_token_file: Option<PathBuf>,
    /// Longest wait in seconds for X's rate-limit window before answering "retry at" (default 20).
    #[arg(long, env = "XMCP_X_RATE_LIMIT_MAX_WAIT", help_heading = X)]
    x_rate_limit_max_wait: Option<i64>,
    /// An OpenID Connect provider's issuer: users sign in there instead of at X.
    #[arg(long, env = "XMCP_OIDC_ISSUER", help_heading = OIDC)]
    oidc_issuer: Option<String>,
    #[arg(long, env = "XMCP_OIDC_CLIENT_ID", help_heading = OIDC)]
    oidc_client_id: Option<String>,
    /// The OIDC client secret; prefer XMCP_OIDC_CLIENT_SECRET_FILE.
    #[arg(long, env = "XMCP_OIDC_CLIENT_SECRET", hide_env_values = true, help_heading = OIDC)]
    oidc_client_secret: Option<String>,
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
    #[arg(long, env = "XMCP_EXTERNAL_CLIENT_SECRET", hide_env_values = true, help_heading = RS_ONLY)]
    external_client_secret: Option<String>,
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
    #[arg(long, env = "XMCP_METRICS_TOKEN_FILE", help_heading = LIMITS)]
    metrics_token_file: Option<PathBuf>,
}

/// The simulated X on its own (`xmcp sandbox`).
#[derive(Args)]
struct SandboxArgs {
    #[arg(long, env = "XMCP_SANDBOX_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, env = "XMCP_SANDBOX_PORT", default_value_t = 8001)]
    port: u16,
    /// The OAuth client id xmcp uses (its XMCP_X_CLIENT_ID).
    #[arg(long, env = "XMCP_SANDBOX_CLIENT_ID", default_value = "xmcp-sandbox")]
    client_id: String,
    /// The client's secret (its XMCP_X_CLIENT_SECRET); omit for a public client.
    #[arg(long, env = "XMCP_SANDBOX_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Callback URLs the client may use (repeatable).
    #[arg(
        long = "redirect-uri",
        env = "XMCP_SANDBOX_REDIRECT_URIS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8000/upstream/callback"
    )]
    redirect_uris: Vec<String>,
    /// Access token lifetime in seconds (X: 7200).
    #[arg(long, env = "XMCP_SANDBOX_ACCESS_TOKEN_TTL", default_value_t = 7200)]
    access_token_ttl: i64,
    /// An app-only bearer token to accept on app-callable endpoints.
    #[arg(long, env = "XMCP_SANDBOX_APP_BEARER_TOKEN", hide_env_values = true)]
    app_bearer_token: Option<String>,
    /// A fault to inject, `ENDPOINT=WHAT[*TIMES]` (repeatable), e.g.
    /// "GET /2/users/me=503*2", "POST /2/tweets=429:900", "*=slow:250",
    /// "POST /2/oauth2/token=refuse-refresh".
    #[arg(long = "fault")]
    faults: Vec<xmcp_sandbox::Fault>,
}

impl ServeArgs {
    fn overrides(&self) -> Settings {
        Settings {
            host: self.host,
            port: self.port,
            public_url: self.public_url.clone(),
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            database_max_connections: self.database_max_connections,
            demo: self.demo.then_some(true),
            log_format: self.log_format,
            log: self.log.clone(),
            mcp_stateful: self.mcp_stateful,
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_origins: self.allowed_origins.clone(),
            encryption_key: self.encryption_key.clone().map(SecretString::from),
            encryption_key_file: self.encryption_key_file.clone(),
            previous_encryption_keys: self
                .previous_encryption_keys
                .clone()
                .map(SecretString::from),
            previous_encryption_keys_file: self.previous_encryption_keys_file.clone(),
            scopes: self.scopes.clone(),
            access_token_ttl: self.access_token_ttl,
            access_token_format: self.access_token_format.clone(),
            refresh_token_ttl: self.refresh_token_ttl,
            refresh_grace: self.refresh_grace,
            registration_enabled: self.registration_enabled,
            registration_limit_per_hour: self.registration_limit_per_hour,
            unused_client_ttl: self.unused_client_ttl,
            cimd_enabled: self.cimd_enabled,
            cimd_allow_loopback: self.cimd_allow_loopback,
            sweep_interval: self.sweep_interval,
            shutdown_timeout: self.shutdown_timeout,
            x_client_id: self.x_client_id.clone(),
            x_client_secret: self.x_client_secret.clone().map(SecretString::from),
            x_client_secret_file: self.x_client_secret_file.clone(),
            x_scopes: self.x_scopes.clone(),
            x_authorize_url: self.x_authorize_url.clone(),
            x_token_url: self.x_token_url.clone(),
            x_revoke_url: self.x_revoke_url.clone(),
            x_api_url: self.x_api_url.clone(),
            x_refresh_margin: self.x_refresh_margin,
            upstream_callback_path: self.upstream_callback_path.clone(),
            x_openapi: self.x_openapi.clone(),
            tools_allow: self.tools_allow.clone(),
            tools_deny: self.tools_deny.clone(),
            tools_tags: self.tools_tags.clone(),
            x_bearer_token: self.x_bearer_token.clone().map(SecretString::from),
            x_bearer_token_file: self.x_bearer_token_file.clone(),
            x_rate_limit_max_wait: self.x_rate_limit_max_wait,
            oidc_issuer: self.oidc_issuer.clone(),
            oidc_client_id: self.oidc_client_id.clone(),
            oidc_client_secret: self.oidc_client_secret.clone().map(SecretString::from),
            oidc_client_secret_file: self.oidc_client_secret_file.clone(),
            oidc_scopes: self.oidc_scopes.clone(),
            external_issuer: self.external_issuer.clone(),
            external_jwks_url: self.external_jwks_url.clone(),
            external_introspection_url: self.external_introspection_url.clone(),
            external_client_id: self.external_client_id.clone(),
            external_client_secret: self.external_client_secret.clone().map(SecretString::from),
            external_client_secret_file: self.external_client_secret_file.clone(),
            rate_limit_per_ip: self.rate_limit_per_ip,
            rate_limit_per_client: self.rate_limit_per_client,
            trusted_proxies: self.trusted_proxies.clone(),
            metrics_token: self.metrics_token.clone().map(SecretString::from),
            metrics_token_file: self.metrics_token_file.clone(),
            ..Default::default()
        }
    }

    /// The configuration of a command that uses only the data directory,
    /// database, keys and logging (the bridge): nobody signs in here, so
    /// the sign-in settings are not required.
    pub(crate) fn storage_config(&self) -> anyhow::Result<Config> {
        let file = self
            .config
            .as_deref()
            .map(Settings::from_file)
            .transpose()?;
        let mut overrides = self.overrides();
        overrides.demo = Some(true);
        Ok(Config::resolve(file, overrides)?)
    }

    pub(crate) fn config(&self) -> anyhow::Result<Config> {
        let file = self
            .config
            .as_deref()
            .map(Settings::from_file)
            .transpose()?;
        Ok(Config::resolve(file, self.overrides())?)
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => run_serve(args).await,
            Command::Sandbox(args) => run_sandbox(args).await,
            Command::CheckConfig(args) => run_check_config(args),
            Command::GenKey { id } => run_gen_key(id),
            Command::RotateKey(args) => run_rotate_key(args).await,
            Command::RotateSigningKey(args) => run_rotate_signing_key(args).await,
            Command::HashPassword => run_hash_password(),
            Command::Bench(args) => bench::run(args).await,
            Command::Login(args) => local::run_login(args).await,
            Command::Logout(args) => local::run_logout(args).await,
            Command::Status(args) => local::run_status(args).await,
            Command::Stdio(args) => local::run_stdio(args).await,
            Command::Bridge(args) => local::run_bridge(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Tools(args) => match run_tools(args) {
                // `xmcp tools | head` closed the pipe: not an error.
                Err(e)
                    if e.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
                {
                    Ok(())
                }
                other => other,
            },
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

#[allow(clippy::print_stdout)]
fn run_tools(args: ToolsArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.openapi)
        .with_context(|| format!("cannot read {}", args.openapi.display()))?;
    let catalog = xmcp_openapi::load(
        &bytes,
        &xmcp_openapi::Options {
            allow: args.allow,
            deny: args.deny,
            tags: args.tags,
            app_token: args.app_token,
            reserved: xmcp_server::tools::BUILTIN_TOOLS.map(String::from).to_vec(),
        },
    )
    .with_context(|| {
        format!(
            "{} is not a usable OpenAPI document",
            args.openapi.display()
        )
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let tools: Vec<_> = catalog.tools.iter().map(xmcp_server::mcp::x_tool).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&tools)?)?;
        return Ok(());
    }
    let width = catalog
        .tools
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    for t in &catalog.tools {
        let who = if t.access.app_only() {
            "(as the app)".to_owned()
        } else {
            t.access.user_scopes.clone().unwrap_or_default().join(" ")
        };
        writeln!(
            out,
            "{:width$}  {:6} {}  {who}",
            t.name,
            t.method.as_str(),
            t.path
        )?;
    }
    writeln!(
        out,
        "\n{} tools from version {}; {} operations are not tools:",
        catalog.tools.len(),
        catalog.version,
        catalog.skipped.len()
    )?;
    for s in &catalog.skipped {
        writeln!(out, "  {}: {}", s.operation, s.reason)?;
    }
    for w in &catalog.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

#[allow(clippy::print_stderr)]
fn fail(e: anyhow::Error) -> std::process::ExitCode {
    eprintln!("xmcp: {e:#}");
    std::process::ExitCode::FAILURE
}

#[allow(clippy::print_stderr)]
async fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    xmcp_server::telemetry::init(config.log_format, &config.log);
    let listener = tokio::net::TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let local = listener.local_addr()?;
    let app = App::build(config, xmcp_server::app::system_clock()).await?;
    tracing::info!(address = %local, issuer = %app.config.auth.issuer, mcp = %app.config.mcp_url(), demo = app.config.demo, "xmcp is listening");
    if app.config.demo {
        eprintln!(
            "\nxmcp demo is running, with a simulated X at {issuer}/sandbox (no X account needed).\n\n  MCP endpoint: {mcp}\n\n  MCP Inspector: npx @modelcontextprotocol/inspector, transport \"Streamable HTTP\", URL {mcp}\n  Claude Code:   claude mcp add --transport http xmcp {mcp}\n  Any MCP client: add {mcp} as a remote server; it discovers the OAuth server,\n  you allow access on the consent page, then pick a demo account on the simulated X.\n\n  The simulated X keeps its users and posts in memory: after a restart, authorize again.\n",
            issuer = app.config.auth.issuer,
            mcp = app.config.mcp_url()
        );
    }
    let shutdown = CancellationToken::new();
    let timeout = std::time::Duration::from_secs(app.config.shutdown_timeout);
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        signal.cancel();
    });
    let server = xmcp_server::serve(app, listener, shutdown.clone());
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(timeout).await } => {
            tracing::warn!("in-flight requests did not finish in time; exiting");
            Ok(())
        }
    }
}

#[allow(clippy::print_stderr)]
async fn run_sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    xmcp_server::telemetry::init(xmcp_server::config::LogFormat::Text, "info");
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let local = listener.local_addr()?;
    let base = format!("http://{local}");
    let clock = xmcp_server::app::system_clock();
    let sandbox = xmcp_sandbox::Sandbox::new(
        xmcp_sandbox::SandboxConfig {
            clients: vec![xmcp_sandbox::SandboxClient {
                client_id: args.client_id.clone(),
                client_secret: args.client_secret.clone(),
                redirect_uris: args.redirect_uris.clone(),
            }],
            access_token_ttl: args.access_token_ttl,
            base_url: base.clone(),
            faults: args.faults,
            app_bearer_token: args.app_bearer_token,
        },
        std::sync::Arc::new(move || clock.now()),
    );
    eprintln!(
        "\nxmcp sandbox (a simulated X) is listening on {base}.\n\n  Point a server at it:\n    XMCP_X_CLIENT_ID={id} XMCP_X_CLIENT_SECRET=<the secret> \\\n    XMCP_X_AUTHORIZE_URL={base}/i/oauth2/authorize XMCP_X_TOKEN_URL={base}/2/oauth2/token \\\n    XMCP_X_REVOKE_URL={base}/2/oauth2/revoke XMCP_X_API_URL={base} xmcp serve\n\n  Allowed callbacks: {cb}\n  OpenAPI document: {base}/2/openapi.json   Faults: {base}/_sandbox/faults\n",
        id = args.client_id,
        cb = args.redirect_uris.join(", "),
    );
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
    });
    axum::serve(listener, sandbox.router())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[allow(clippy::print_stdout)]
fn run_check_config(args: ServeArgs) -> anyhow::Result<()> {
    let c = args.config()?;
    println!("configuration is valid");
    println!("  issuer:        {}", c.auth.issuer);
    println!("  MCP endpoint:  {}", c.mcp_url());
    println!("  listen:        {}:{}", c.host, c.port);
    println!(
        "  database:      {}",
        xmcp_server::config::redacted_database_url(&c.database_url)
    );
    println!(
        "  sign-in:       {}",
        if c.demo {
            "demo accounts"
        } else {
            "local accounts"
        }
    );
    println!(
        "  registration:  dynamic {}, metadata documents {}, {} static client(s)",
        on_off(c.auth.registration_enabled),
        on_off(c.auth.cimd_enabled),
        c.auth.static_clients.len()
    );
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

#[allow(clippy::print_stdout)]
fn run_gen_key(id: Option<String>) -> anyhow::Result<()> {
    let key = match id {
        Some(id) => xmcp_crypto::envelope::DataKey::generate(id)?,
        None => xmcp_server::keys::new_data_key()?,
    };
    println!("{}", key.export().expose_secret());
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn run_rotate_key(args: ServeArgs) -> anyhow::Result<()> {
    use xmcp_server::config::KeySource;
    let config = args.config()?;
    let now = xmcp_server::app::system_clock().now();
    let store = xmcp_store::connect(&config.database_url, 2).await?;
    match &config.encryption_key {
        KeySource::Configured(_) => {
            let keyring = xmcp_server::keys::load_keyring(&config)?;
            let (changed, current) =
                xmcp_server::keys::reseal_all(store.as_ref(), &keyring, now).await?;
            println!(
                "re-encrypted {changed} row(s) under key {}; {current} already used it",
                keyring.active_id()
            );
            println!(
                "once every instance runs with this key, remove XMCP_PREVIOUS_ENCRYPTION_KEYS"
            );
        }
        KeySource::DataDirFile(path) => {
            let (old, mut previous) = xmcp_server::keys::read_key_file(path)?;
            let new = xmcp_server::keys::new_data_key()?;
            // Step 1: the new key becomes active, the old stays readable.
            let mut kept: Vec<&xmcp_crypto::envelope::DataKey> = vec![&new, &old];
            kept.extend(previous.iter());
            xmcp_server::keys::write_key_file(path, &kept)?;
            let old_id = old.id().to_owned();
            previous.insert(0, old);
            let (new_copy, _) = xmcp_server::keys::read_key_file(path)?;
            let keyring = xmcp_crypto::envelope::Keyring::new(new_copy, previous);
            // Step 2: re-seal; Step 3: drop the old keys.
            let (changed, current) =
                xmcp_server::keys::reseal_all(store.as_ref(), &keyring, now).await?;
            xmcp_server::keys::write_key_file(path, &[&new])?;
            println!(
                "rotated {} from key {old_id} to {}: re-encrypted {changed} row(s) ({current} already current)",
                path.display(),
                new.id()
            );
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn run_rotate_signing_key(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let clock = xmcp_server::app::system_clock();
    let store = xmcp_store::connect(&config.database_url, 2).await?;
    let keyring = std::sync::Arc::new(xmcp_server::keys::load_keyring(&config)?);
    let keys =
        xmcp_auth::jwt::JwtKeys::load(store, keyring, config.auth.access_token_ttl, clock.now())
            .await?;
    let kid = keys.rotate(clock.now()).await?;
    println!("signing key {kid} is now active; instances pick it up within a minute");
    Ok(())
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn run_hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    if atty_stdin() {
        eprint!("password: ");
        std::io::stderr().flush()?;
    }
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    println!("{}", xmcp_crypto::password::hash(password));
    Ok(())
}

fn atty_stdin() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
