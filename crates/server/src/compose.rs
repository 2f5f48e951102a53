//! The parts every way of running xmcp is assembled from: the data
//! directory, key ring and store that every command opens, X as an
//! upstream (its OAuth client, identity provider, token vault and API), and
//! what the tool registry and its ledger take from configuration.
//!
//! [`crate::app`] assembles the HTTP server from them, [`crate::local`] the
//! one-person `stdio` and `login`, and the `xmcp` binary its other commands.

use crate::config::Config;
use crate::mcp::ledger::{Ledger, LedgerConfig};
use crate::mcp::registry::RegistryConfig;
use std::sync::Arc;
use xmcp_auth::Clock;
use xmcp_auth::upstream::Vault;
use xmcp_crypto::envelope::Keyring;
use xmcp_store::Store;
use xmcp_x::{XApi, XApiConfig, XIdentityProvider, XOAuth, XOAuthConfig};

/// The database connections a command other than `serve` opens at most.
pub const COMMAND_CONNECTIONS: u32 = 2;

/// Open the store at `database_url` (running its migrations), first creating
/// the data directory, private, when the database is a file in it.
pub async fn open_store(
    config: &Config,
    database_url: &str,
    max_connections: u32,
) -> anyhow::Result<Arc<dyn Store>> {
    if database_url.starts_with("sqlite:") && !database_url.contains(":memory:") {
        crate::keys::create_private_dir(&config.data_dir)?;
    }
    xmcp_store::connect(database_url, max_connections)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))
}

/// The store and the key ring that seals what it keeps: what every command
/// that reads or writes sealed values opens. The key file is created in
/// the data directory on first use, unless a key is configured.
pub async fn open_store_and_keys(
    config: &Config,
    database_url: &str,
    max_connections: u32,
) -> anyhow::Result<(Arc<dyn Store>, Arc<Keyring>)> {
    let store = open_store(config, database_url, max_connections).await?;
    let keyring = Arc::new(crate::keys::load_keyring(config)?);
    Ok((store, keyring))
}

/// X as the upstream: who signs users in, and the API that acts for them.
pub struct XUpstream {
    pub oauth: Arc<XOAuth>,
    pub identity: Arc<XIdentityProvider>,
    /// Calls X for a user with the tokens the vault keeps.
    pub api: Arc<XApi>,
}

/// X's OAuth client, identity provider and API for `oauth`, with the vault
/// that keeps each user's X tokens in `store`.
pub fn x_upstream(
    config: &Config,
    store: &Arc<dyn Store>,
    keyring: &Arc<Keyring>,
    clock: &Arc<dyn Clock>,
    oauth: XOAuthConfig,
    refresh_margin: i64,
) -> XUpstream {
    let http = xmcp_x::oauth::http_client();
    let api_url = oauth.api_url.clone();
    let oauth = Arc::new(XOAuth::new(oauth, http.clone()));
    let identity = Arc::new(XIdentityProvider::new(oauth.clone()));
    let vault = Arc::new(Vault::new(
        store.clone(),
        keyring.clone(),
        identity.clone(),
        clock.clone(),
        refresh_margin,
    ));
    let api = XApi::new(
        http,
        api_url,
        vault,
        XApiConfig {
            app_token: config.tools.app_token.clone(),
            max_rate_limit_wait: config.tools.max_rate_limit_wait,
            ..XApiConfig::default()
        },
    );
    XUpstream {
        oauth,
        identity,
        api: Arc::new(api),
    }
}

/// X behind the X tools, as configured.
pub fn x_source(
    config: &Config,
    api: Arc<XApi>,
    catalog: Arc<xmcp_openapi::Catalog>,
) -> crate::mcp::XSource {
    crate::mcp::XSource {
        api,
        catalog,
        prices: config.tools.prices.clone(),
        max_result_chars: config.tools.max_result_chars,
        media: config.tools.media.clone(),
    }
}

/// Spend caps, the audit trail and writes made once, counted in `store`.
pub fn ledger(
    config: &Config,
    store: &Arc<dyn Store>,
    keyring: &Arc<Keyring>,
    clock: &Arc<dyn Clock>,
) -> Arc<Ledger> {
    Arc::new(Ledger::new(
        store.clone(),
        keyring.clone(),
        clock.clone(),
        LedgerConfig {
            caps: config.tools.caps,
            retention: config.tools.audit_retention,
            once_window: config.tools.idempotency_window,
        },
    ))
}

/// What the tool registry takes from configuration; `issuable`: the scopes
/// clients can be granted.
pub fn registry_config(config: &Config, issuable: Vec<String>) -> RegistryConfig {
    RegistryConfig {
        toolsets: config.tools.toolsets.clone(),
        read_only: config.tools.read_only,
        issuable,
        how_to_grant: crate::mcp::registry::GRANT_BY_REAUTHORIZING,
    }
}
