//! `xmcp login`, `logout`, `status` and `stdio`: one person, on their own
//! machine.

use crate::settings::LocalSettings;
use clap::Args;
use rmcp::ServiceExt;
use std::io::Write;
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
