//! Typed, layered, validated configuration.
//!
//! Layers, lowest first: built-in defaults, the TOML file (`--config` /
//! `XMCP_CONFIG`), `XMCP_*` environment variables, command-line flags. Each
//! setting is declared once, in its group of [`Settings`] (`settings.rs`):
//! clap reads the flags and variables into one layer, serde the file into
//! another, and [`Config::resolve`] merges them and validates each group,
//! with messages that say how to fix what is wrong. Secrets may come from
//! files (`*_FILE` variables / `*_file` keys) and are held as
//! `SecretString`.

mod identity;
mod settings;
#[cfg(test)]
mod tests;
mod tools;

pub use identity::*;
pub use settings::*;
pub use tools::*;

use merge::Merge;
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

fn read_secret_file(path: &Path, what: &str) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read {what} from {}: {e}", path.display())))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

/// A secret given directly, else read from its file, else none.
fn secret_or_file(
    value: &Option<SecretString>,
    file: &Option<PathBuf>,
    what: &str,
) -> Result<Option<SecretString>, ConfigError> {
    match (value, file) {
        (Some(v), _) => Ok(Some(v.clone())),
        (None, Some(path)) => read_secret_file(path, what).map(Some),
        (None, None) => Ok(None),
    }
}

/// The items of a list setting: each value (a flag may be repeated, and
/// the file gives an array) split on commas and spaces, without empty ones.
fn list(v: &Option<Vec<String>>) -> Vec<String> {
    v.iter()
        .flatten()
        .flat_map(|s| s.split([',', ' ']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A number that must lie in `range`; `default` when unset. `fix` is the
/// whole message, which says how to fix it.
fn within<T: PartialOrd + Copy>(
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    fix: &str,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if range.contains(&v) => Ok(v),
        Some(_) => Err(err(fix)),
    }
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
        let mut s = overrides;
        if let Some(file) = file {
            s.merge(file);
        }
        let demo = s.x.demo == Some(true);
        let host = s.server.host.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let port = s.server.port.unwrap_or(8000);

        let public_url = match &s.server.public_url {
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

        if demo && s.server.demo_public != Some(true) {
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

        let data_dir = s.store.data_dir.clone().unwrap_or_else(default_data_dir);
        let database_url = s
            .store
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

        let (encryption_key, previous_encryption_keys) = s.keys.resolve(&data_dir, is_postgres)?;
        let mut auth = s.auth.resolve(&public_url)?;
        let identity = identity(&s, demo)?;
        let log_format = s.log.log_format.unwrap_or_default();
        let log = s.log.log.clone().unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log)
            .map_err(|e| err(format!("log filter `{log}` is invalid ({e}); use e.g. `info` or `xmcp=debug,info` (XMCP_LOG)")))?;

        let mut allowed_hosts = list(&s.server.allowed_hosts);
        if let Some(h) = public_url.host_str() {
            allowed_hosts.push(h.trim_start_matches('[').trim_end_matches(']').to_owned());
            if let Some(p) = public_url.port() {
                allowed_hosts.push(format!("{h}:{p}"));
            }
        }
        allowed_hosts.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        let mut allowed_origins = list(&s.server.allowed_origins);
        allowed_origins.push(public_url.origin().ascii_serialization());
        allowed_origins.extend(
            ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"].map(String::from),
        );

        let tools = s.tools.resolve()?;
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
            database_max_connections: s.store.database_max_connections.unwrap_or(10).max(1),
            demo,
            log_format,
            log,
            mcp_stateful: s.server.mcp_stateful.unwrap_or(false),
            allowed_hosts,
            allowed_origins,
            encryption_key,
            previous_encryption_keys,
            auth,
            users: s.auth.users.clone(),
            identity,
            sweep_interval: s.server.sweep_interval.unwrap_or(300).max(1),
            shutdown_timeout: s.server.shutdown_timeout.unwrap_or(10),
            tools,
            rate_limit_per_ip: s.limits.rate_limit_per_ip.unwrap_or(300),
            rate_limit_per_client: s.limits.rate_limit_per_client.unwrap_or(600),
            trusted_proxies: list(&s.limits.trusted_proxies)
                .iter()
                .map(|p| {
                    p.parse::<ipnet::IpNet>()
                        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            err(format!(
                                "trusted proxy `{p}` is not an IP address or CIDR range, e.g. 10.0.0.0/8 (XMCP_TRUSTED_PROXIES)"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
            metrics_token: secret_or_file(
                &s.limits.metrics_token,
                &s.limits.metrics_token_file,
                "the metrics token",
            )?,
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

impl KeySettings {
    /// Where the encryption key comes from, and the keys that only decrypt.
    fn resolve(
        &self,
        data_dir: &Path,
        is_postgres: bool,
    ) -> Result<(KeySource, Option<SecretString>), ConfigError> {
        let key = secret_or_file(
            &self.encryption_key,
            &self.encryption_key_file,
            "the encryption key",
        )?;
        let encryption_key = match key {
            Some(k) => KeySource::Configured(k),
            None if is_postgres => {
                return Err(err(
                    "with PostgreSQL every instance must use the same encryption key: generate one with `xmcp gen-key` and set XMCP_ENCRYPTION_KEY_FILE (or XMCP_ENCRYPTION_KEY) on all instances",
                ));
            }
            None => KeySource::DataDirFile(data_dir.join("encryption.key")),
        };
        if let KeySource::Configured(k) = &encryption_key {
            xmcp_crypto::envelope::DataKey::parse(k.expose_secret()).map_err(|e| {
                err(format!(
                    "the encryption key is invalid ({e}); generate one with `xmcp gen-key`"
                ))
            })?;
        }
        let previous_encryption_keys = secret_or_file(
            &self.previous_encryption_keys,
            &self.previous_encryption_keys_file,
            "the previous encryption keys",
        )?;
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
        Ok((encryption_key, previous_encryption_keys))
    }
}

impl AuthServerSettings {
    /// The authorization server's configuration, and the local accounts'
    /// checked.
    fn resolve(&self, public_url: &Url) -> Result<xmcp_auth::AuthConfig, ConfigError> {
        let mut auth = xmcp_auth::AuthConfig::new(public_url, xmcp_x::scopes::names());
        auth.scope_words = xmcp_x::scopes::words();
        auth.service_name = "the X API".into();
        auth.resource_name = "xmcp: the X API over MCP".into();
        if self.scopes.is_some() {
            let scopes = list(&self.scopes);
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
        if let Some(v) = self.access_token_ttl {
            auth.access_token_ttl = positive("access_token_ttl", "XMCP_ACCESS_TOKEN_TTL", v)?;
        }
        match self.access_token_format.as_deref() {
            None | Some("opaque") => {}
            Some("jwt") => auth.jwt_access_tokens = true,
            Some(other) => {
                return Err(err(format!(
                    "access_token_format must be `opaque` or `jwt`, not `{other}` (XMCP_ACCESS_TOKEN_FORMAT)"
                )));
            }
        }
        if let Some(v) = self.refresh_token_ttl {
            auth.refresh_token_ttl = positive("refresh_token_ttl", "XMCP_REFRESH_TOKEN_TTL", v)?;
        }
        auth.refresh_grace = within(
            self.refresh_grace,
            auth.refresh_grace,
            0..=60,
            "refresh_grace must be between 0 and 60 seconds (set XMCP_REFRESH_GRACE)",
        )?;
        if let Some(v) = self.registration_enabled {
            auth.registration_enabled = v;
        }
        if let Some(v) = self.registration_limit_per_hour {
            auth.registration_limit_per_hour = positive(
                "registration_limit_per_hour",
                "XMCP_REGISTRATION_LIMIT_PER_HOUR",
                v,
            )?;
        }
        if let Some(v) = self.unused_client_ttl {
            auth.unused_client_ttl = positive("unused_client_ttl", "XMCP_UNUSED_CLIENT_TTL", v)?;
        }
        if let Some(v) = self.cimd_enabled {
            auth.cimd_enabled = v;
        }
        if self.redirect_schemes.is_some() {
            auth.redirect_schemes = xmcp_auth::redirect::SchemePolicy::new(list(&self.redirect_schemes))
            .map_err(|e| {
                err(format!(
                    "redirect_schemes: {e}; list native clients' schemes such as cursor or vscode (set XMCP_REDIRECT_SCHEMES)"
                ))
            })?;
        }
        if self.cimd_allow_loopback == Some(true) {
            if !is_loopback_url(public_url) {
                return Err(err(
                    "cimd_allow_loopback lets the server fetch from loopback addresses; it is only allowed when the server itself runs on a loopback public_url (development)",
                ));
            }
            auth.cimd_allow_loopback = true;
        }
        auth.introspection_clients = list(&self.introspection_clients);
        for c in &self.clients {
            auth.static_clients
                .push(static_client(c, &auth.redirect_schemes)?);
        }

        if let Some(path) = &self.upstream_callback_path {
            if !path.starts_with('/') || path.contains(['?', '#']) || path == "/mcp" {
                return Err(err(format!(
                    "upstream_callback_path `{path}` must be a path starting with `/` (no query), e.g. /upstream/callback (XMCP_UPSTREAM_CALLBACK_PATH)"
                )));
            }
            auth.upstream_callback_path = path.clone();
        }
        for u in &self.users {
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

        Ok(auth)
    }
}
