//! `xmcp bridge`: a remote MCP server that wants OAuth, served on stdio to a
//! client that only speaks stdio. The MCP client and its OAuth part are in
//! `xmcp_server::bridge`; this is the command.

use crate::settings::StoreArgs;
use clap::Args;
use rmcp::ServiceExt;
use xmcp_server::compose;

#[derive(Args)]
pub struct BridgeArgs {
    /// The remote MCP endpoint (streamable HTTP), e.g. https://mcp.example.com/mcp.
    pub url: url::Url,
    #[command(flatten)]
    pub store: StoreArgs,
    /// A client id registered with the remote authorization server (else a
    /// client ID metadata document, else dynamic registration).
    #[arg(long, env = "XMCP_BRIDGE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The secret of --client-id, read from this file.
    #[arg(long, env = "XMCP_BRIDGE_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// An https URL of a client ID metadata document describing the bridge.
    #[arg(long, env = "XMCP_BRIDGE_CLIENT_METADATA_URL")]
    pub client_metadata_url: Option<String>,
    /// Scopes to ask for (default: what the server advertises).
    #[arg(
        long = "oauth-scope",
        env = "XMCP_BRIDGE_SCOPES",
        value_delimiter = ','
    )]
    pub oauth_scopes: Vec<String>,
    /// Loopback port of the OAuth callback (0: any free port).
    #[arg(long, env = "XMCP_BRIDGE_CALLBACK_PORT", default_value_t = 0)]
    pub callback_port: u16,
    /// Only print the authorization URL; do not open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Forget the stored tokens for URL and exit.
    #[arg(long)]
    pub forget: bool,
}

#[allow(clippy::print_stderr)]
pub async fn run_bridge(args: BridgeArgs) -> anyhow::Result<()> {
    let config = args.store.config()?;
    xmcp_server::telemetry::init(config.log_format, &config.log);
    let (store, keyring) =
        compose::open_store_and_keys(&config, &config.database_url, compose::COMMAND_CONNECTIONS)
            .await?;
    if args.forget {
        let name = xmcp_server::bridge::credentials_name(&args.url);
        let had = store.delete_local_state(&name).await?;
        eprintln!(
            "{}",
            if had {
                "Forgot the stored tokens."
            } else {
                "No tokens were stored for this server."
            }
        );
        return Ok(());
    }
    let client_secret = match &args.client_secret_file {
        Some(path) => Some(secrecy::SecretString::from(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
                .trim()
                .to_owned(),
        )),
        None => None,
    };
    if client_secret.is_some() && args.client_id.is_none() {
        anyhow::bail!("--client-secret-file needs --client-id (XMCP_BRIDGE_CLIENT_ID)");
    }
    let client = xmcp_server::bridge::BridgeClient {
        client_id: args.client_id.clone(),
        client_secret,
        client_metadata_url: args.client_metadata_url.clone(),
        scopes: args.oauth_scopes.clone(),
    };
    let no_browser = args.no_browser;
    let remote = xmcp_server::bridge::connect(
        &args.url,
        &client,
        store,
        keyring,
        xmcp_server::app::system_clock(),
        args.callback_port,
        std::sync::Arc::new(move |url: &str| {
            eprintln!(
                "Authorize xmcp bridge in your browser. If it does not open, open this URL:\n\n  {url}\n"
            );
            if !no_browser && let Err(e) = open::that_detached(url) {
                eprintln!("(could not open a browser: {e})");
            }
        }),
    )
    .await?;
    tracing::info!(server = %args.url, "connected; serving MCP on stdio");
    let remote = std::sync::Arc::new(remote);
    let bridge = xmcp_server::bridge::Bridge::new(remote.clone());
    let service = bridge
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP over stdio failed to start: {e}"))?;
    service
        .waiting()
        .await
        .map_err(|e| anyhow::anyhow!("MCP over stdio stopped: {e}"))?;
    // Close the remote session politely (the handler holding the other
    // reference is gone with the stdio service).
    if let Ok(remote) = std::sync::Arc::try_unwrap(remote) {
        let _ = remote.service.cancel().await;
    }
    Ok(())
}
