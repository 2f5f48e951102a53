//! The tools section: where X's OpenAPI document comes from, toolsets,
//! read-only mode, results' size, prices, spending caps, audit, writes made
//! once, media.

use super::*;

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

impl ToolsSettings {
    /// The tools' configuration, with its defaults, validated.
    pub(super) fn resolve(&self) -> Result<ToolsConfig, ConfigError> {
        let openapi = match self.x_openapi.as_deref().map(str::trim) {
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
        let app_token = secret_or_file(
            &self.x_bearer_token,
            &self.x_bearer_token_file,
            "the X app bearer token",
        )?
        .filter(|t| !t.expose_secret().is_empty());
        let max_rate_limit_wait = within(
            self.x_rate_limit_max_wait,
            20,
            0..=900,
            "x_rate_limit_max_wait must be between 0 and 900 seconds (X's windows are 15 minutes; set XMCP_X_RATE_LIMIT_MAX_WAIT)",
        )?;
        let toolsets = match list(&self.tools_toolsets) {
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
        let max_result_chars = within(
            self.tools_max_result_chars,
            DEFAULT_MAX_RESULT_CHARS,
            1_000..=usize::MAX,
            "tools_max_result_chars must be at least 1000 (set XMCP_TOOLS_MAX_RESULT_CHARS)",
        )?;
        let caps = crate::mcp::ledger::Caps {
            user: cap(
                self.spend_cap_user.as_deref(),
                "spend_cap_user",
                "XMCP_SPEND_CAP_USER",
            )?
            .unwrap_or(Some(DEFAULT_USER_CAP)),
            client: cap(
                self.spend_cap_client.as_deref(),
                "spend_cap_client",
                "XMCP_SPEND_CAP_CLIENT",
            )?
            .flatten(),
            deployment: cap(
                self.spend_cap_deployment.as_deref(),
                "spend_cap_deployment",
                "XMCP_SPEND_CAP_DEPLOYMENT",
            )?
            .flatten(),
        };
        let audit_days = within(
            self.audit_retention_days,
            DEFAULT_AUDIT_DAYS,
            1..=3_650,
            "audit_retention_days must be between 1 and 3650 (set XMCP_AUDIT_RETENTION_DAYS)",
        )?;
        let idempotency_window = within(
            self.idempotency_window,
            DEFAULT_IDEMPOTENCY_WINDOW,
            0..=86_400,
            "idempotency_window must be between 0 and 86400 seconds (set XMCP_IDEMPOTENCY_WINDOW)",
        )?;
        let media_max = within(
            self.media_max_mb,
            64,
            1..=512,
            "media_max_mb must be between 1 and 512 (X's largest video; set XMCP_MEDIA_MAX_MB)",
        )?;
        let media = crate::mcp::media::MediaConfig {
            max_bytes: media_max << 20,
            allow_private: self.media_allow_private.unwrap_or(false),
            ..Default::default()
        };
        Ok(ToolsConfig {
            openapi,
            allow: list(&self.tools_allow),
            deny: list(&self.tools_deny),
            tags: list(&self.tools_tags),
            app_token,
            max_rate_limit_wait,
            toolsets,
            read_only: self.tools_readonly.unwrap_or(false),
            max_result_chars,
            prices: std::sync::Arc::new(self.price_table()?),
            caps,
            audit_retention: audit_days * 86_400,
            idempotency_window,
            media,
        })
    }

    /// X's prices: the built-in table, or the file given.
    fn price_table(&self) -> Result<xmcp_openapi::prices::PriceTable, ConfigError> {
        let Some(path) = &self.x_prices_file else {
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
}
