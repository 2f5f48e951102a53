//! `xmcp login`, `logout`, `status` and `stdio`: one person, on their own
//! machine.

use crate::settings::{LocalSettings, StoreArgs};
use clap::Args;
use rmcp::ServiceExt;
use std::io::Write;
use xmcp_server::compose;
use xmcp_server::local::{self, LOGIN_TIMEOUT};

#[derive(Args)]
pub struct LocalArgs {
    #[command(flatten)]
    pub settings: LocalSettings,
    /// Loopback port X redirects back to (0: any free port). Register
    /// http://127.0.0.1:<port>/callback as a callback URL of your X app.
    #[arg(long, env = "XMCP_LOGIN_PORT", default_value_t = 0)]
    pub callback_port: u16,
}

#[derive(Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub local: LocalArgs,
    /// Only print the sign-in URL; do not open a browser.
    #[arg(long)]
    pub no_browser: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub local: LocalArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

async fn open_parts(args: &LocalArgs, with_catalog: bool) -> anyhow::Result<local::LocalParts> {
    let config = args.settings.config()?;
    if config.demo && !with_catalog {
        anyhow::bail!(
            "--demo keeps its simulated X and sign-in in memory, so there is nothing to sign in to ahead of time: run `xmcp stdio --demo` and call its auth_start tool"
        );
    }
    xmcp_server::telemetry::init(config.log_format, &config.log);
    local::open(
        &config,
        xmcp_server::app::system_clock(),
        args.callback_port,
        with_catalog,
    )
    .await
}

#[allow(clippy::print_stderr)]
pub async fn run_login(args: LoginArgs) -> anyhow::Result<()> {
    let parts = open_parts(&args.local, false).await?;
    let started = parts.local.start_login().await?;
    eprintln!(
        "Sign in to X in your browser. If it does not open, open this URL:\n\n  {}\n\nWaiting for X to send the browser back to {} ...",
        started.url, started.redirect_uri
    );
    if !args.no_browser
        && let Err(e) = open::that_detached(&started.url)
    {
        eprintln!("(could not open a browser: {e})");
    }
    let signed_in = started
        .finish(LOGIN_TIMEOUT)
        .await
        .map_err(|e| anyhow::anyhow!("sign-in failed: {e}"))?;
    eprintln!(
        "Signed in to X as @{} ({}). Granted: {}\n`xmcp stdio` now acts for this account.",
        signed_in.username, signed_in.name, signed_in.scope
    );
    Ok(())
}

#[allow(clippy::print_stderr)]
pub async fn run_logout(args: LocalArgs) -> anyhow::Result<()> {
    let parts = open_parts(&args, false).await?;
    match parts.local.logout().await? {
        None => eprintln!("Nobody is signed in."),
        Some((status, problems)) => {
            for p in &problems {
                eprintln!("warning: {p}");
            }
            eprintln!(
                "Signed out @{}: the X tokens were {} and deleted.",
                status.username.as_deref().unwrap_or(&status.subject),
                if problems.is_empty() {
                    "revoked at X"
                } else {
                    "not all revoked at X (see above)"
                }
            );
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
pub async fn run_status(args: StatusArgs) -> anyhow::Result<()> {
    let parts = open_parts(&args.local, false).await?;
    let status = parts.local.status().await?;
    let now = xmcp_server::app::system_clock().now();
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = match &status {
            None => serde_json::json!({"signed_in": false}),
            Some(s) => serde_json::json!({
                "signed_in": true,
                "subject": s.subject,
                "username": s.username,
                "name": s.display_name,
                "scopes": s.scope.split(' ').filter(|x| !x.is_empty()).collect::<Vec<_>>(),
                "expires_at": s.expires_at,
                "can_refresh": s.can_refresh,
                "reauth_required": s.reauth_required,
            }),
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let Some(s) = status else {
        writeln!(out, "Nobody is signed in. Run `xmcp login`.")?;
        return Ok(());
    };
    writeln!(
        out,
        "Signed in to X as @{} ({})",
        s.username.as_deref().unwrap_or("?"),
        s.display_name.as_deref().unwrap_or(&s.subject)
    )?;
    writeln!(out, "  scopes:  {}", s.scope)?;
    let expiry = match s.expires_at {
        Some(t) if t > now => format!("in {} min", (t - now + 59) / 60),
        Some(_) => "expired".to_owned(),
        None => "never".to_owned(),
    };
    writeln!(
        out,
        "  access token expires {expiry}; {}",
        if s.reauth_required {
            "X refused its refresh token: run `xmcp login` again"
        } else if s.can_refresh {
            "it is refreshed automatically"
        } else {
            "no refresh token (sign in again when it expires)"
        }
    )?;
    Ok(())
}

pub async fn run_stdio(args: LocalArgs) -> anyhow::Result<()> {
    let parts = open_parts(&args, true).await?;
    let handler = parts.handler();
    tracing::info!(tools = parts.catalog.tools.len(), "serving MCP on stdio");
    let service = handler
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP over stdio failed to start: {e}"))?;
    service
        .waiting()
        .await
        .map_err(|e| anyhow::anyhow!("MCP over stdio stopped: {e}"))?;
    Ok(())
}

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
